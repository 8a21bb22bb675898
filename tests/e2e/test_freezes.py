"""Freeze windows on the Bridge, at laptop and phone width: the environment page shows the window on now and
the one coming, the frozen lane says until when, and a waiting sequence is let through from its page."""

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.test_rerun_and_approvals import confirm, fits, new_project, open_live, trigger

pytestmark = pytest.mark.e2e


# A weekly window that starts two days from now, whatever day the tests run: it is coming, never on.
IN_TWO_DAYS = (datetime.now(timezone.utc) + timedelta(days=2)).weekday()
WEEKLY = f"0 18 * * {['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'][IN_TWO_DAYS]}"


@pytest.fixture
def frozen(bosun):
    http, name = new_project(bosun, "frozen")
    now = datetime.now(timezone.utc)
    for window in ({"name": "release-week", "reason": "The quarterly release is being certified; only hotfixes.",
                    "start": (now - timedelta(minutes=5)).isoformat(), "end": (now + timedelta(hours=3)).isoformat()},
                   {"name": "weekend", "cron": WEEKLY, "duration": "2d14h", "timeZone": "Europe/Vienna",
                    "reason": "Nobody is on call.", "running": "finish"}):
        http.post(f"/api/controlPlane/v1/project/{name}/freeze", json=window).raise_for_status()
    return http, name


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_frozen_lane_is_shown_and_a_waiting_delivery_is_let_through(logged_in, bosun, frozen, shot, width, height):
    http, project = frozen
    page = logged_in
    page.set_viewport_size({"width": width, "height": height})
    context = trigger(http, project, "delivery")
    page.goto(f"{bosun['url']}/bridge/project/{project}")
    windows = page.locator(".freeze")
    expect(windows).to_have_count(2)
    expect(windows.first).to_contain_text("❄ on until")
    expect(windows.first).to_contain_text("release-week")
    expect(windows.nth(1)).to_contain_text(f"every {WEEKLY} for 62h0m0s (Europe/Vienna)")
    expect(windows.nth(1)).to_contain_text("running sequences run to their end")
    expect(page.locator("#lane-dev-carts .lane-frozen")).to_contain_text("(window 'release-week')")
    expect(page.locator("#lane-dev-carts .pill.waiting")).to_contain_text("1 waiting")
    fits(page, width)
    shot(page, f"freeze-environment-{width}")

    open_live(page, bosun, project, context)
    expect(page.locator(".waiting-note")).to_contain_text("frozen until")
    expect(page.locator(".badge").first).to_contain_text("Waiting #1 (frozen)")
    confirm(page, "❄ Let through…", "Let delivery in dev through the freeze?", "hotfix for the checkout outage",
            width=width, shot=shot, name="freeze-let-through-dialog", action="Let through")
    expect(page.locator(".outcome.ok, .flash").first).to_contain_text("started")
    expect(page.get_by_role("button", name="❄ Let through…")).to_have_count(0)
    expect(page.locator(".task").first).to_contain_text("deployment")
    fits(page, width)
    shot(page, f"freeze-let-through-done-{width}")
    audit = http.get(f"/api/controlPlane/v1/sequence/{project}/{context}/audit").json()["actions"]
    assert [(a["command"], a["source"], a["reason"]) for a in audit] == [
        ("let-through", "bridge", "hotfix for the checkout outage")]
