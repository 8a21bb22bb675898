"""Retry from here: a delivery that failed at its task goes on from it, from the Bridge, at laptop and phone
width; the failed attempt stays on the page beside the new one."""

import pytest
from playwright.sync_api import expect

from tests.e2e.test_rerun_and_approvals import confirm, failed_delivery, fits, gates, open_live  # noqa: F401  (gates: a fixture)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_failed_task_is_retried_from_the_sequence_page(logged_in, bosun, gates, shot, width, height):  # noqa: F811
    http, project = gates
    page = logged_in
    page.set_viewport_size({"width": width, "height": height})
    context = failed_delivery(http, project)
    open_live(page, bosun, project, context)
    confirm(page, "↻ Retry from here…", "Retry deployment and go on from there?", "the registry is back",
            width=width, shot=shot, name="retry-dialog", action="Retry")
    expect(page.locator(".outcome.ok")).to_contain_text("Retried from task 'deployment' by admin: the registry is back")
    tasks = page.locator(".task")
    expect(tasks).to_have_count(2)
    expect(tasks.first).to_contain_text("the registry answered 503")  # the failed attempt keeps what it had
    expect(tasks.nth(1)).to_contain_text("attempt 2")
    expect(page.get_by_role("button", name="↻ Retry from here…")).to_have_count(0)
    fits(page, width)
    shot(page, f"retry-done-{width}")
