"""Every Bridge page, at laptop and phone width: it fits the screen, and the console and network stay clean."""

import pytest
from playwright.sync_api import expect

from tests.e2e.test_bridge import Client

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(bosun):
    return Client(bosun)


def test_every_page_fits_a_phone_and_keeps_the_console_clean(logged_in, bosun, api, shot):
    project = api.project()
    running = api.trigger(project, "0.11.1-with-a-rather-long-tag-name")
    started = api.send(project, running, "started")
    waiting = api.trigger(project, "0.11.2")
    page = logged_in
    problems, current = [], {"page": ""}

    def note(what):
        if current["page"] != "not-found":  # that page's own 404 is the point of it
            problems.append(f"{current['page']}: {what}")

    page.on("console", lambda m: note(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("response", lambda r: note(f"{r.status} {r.url}") if r.status >= 400 else None)
    pages = {
        "projects": "/bridge/",
        "environment": f"/bridge/project/{project}/",
        "sequences": f"/bridge/project/{project}/sequence/",
        "running": f"/bridge/project/{project}/sequence/{running}",
        "waiting": f"/bridge/project/{project}/sequence/{waiting}",
        "tokens": "/bridge/tokens/",
        "deployments": f"/bridge/project/{project}/stage/dev/service/carts/deployments",
        "settings": f"/bridge/project/{project}/settings",
        "new-project": "/bridge/projects/new",
        "log": f"/bridge/project/{project}/sequence/{running}/task/{started['triggeredID']}/log/view",
        "not-found": "/bridge/project/missing/",
    }
    for name, path in pages.items():
        for width, height in ((1440, 900), (390, 844)):
            current["page"] = name
            page.set_viewport_size({"width": width, "height": height})
            page.goto(bosun["url"] + path)
            if name not in ("not-found", "tokens", "deployments", "settings", "new-project", "log"):
                expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
            shot(page, f"page-{name}-{width}")
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{name} is {wide}px wide at {width}px"
    other = api.trigger(project, "0.12.0", service="orders")  # pushed to every open page of the project
    current["page"] = "running"
    page.goto(bosun["url"] + pages["running"])
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    api.send(project, other, "started")
    api.send(project, running, "finished")
    expect(page.locator(".task").first).to_contain_text("passed")
    assert problems == [], problems


def test_admin_lists_show_every_column_at_laptop_width(logged_in, bosun, api, shot):
    project = api.project()
    context = api.trigger(project, "0.11.1")
    api.send(project, context, "started")
    page = logged_in
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(bosun["url"] + "/admin/")
    expect(page.get_by_role("link", name="Webhook deliveries")).to_be_visible()
    for name, path in (("runs", "/admin/sequences/sequenceexecution/"), ("tasks", "/admin/sequences/taskexecution/")):
        page.goto(bosun["url"] + path)
        expect(page.locator("#result_list")).to_contain_text(context[:8] if name == "runs" else "deployment")
        table = page.evaluate("document.querySelector('#result_list').scrollWidth")
        room = page.evaluate("document.querySelector('#result_list').parentElement.clientWidth")
        assert table <= room, f"the {name} list is {table}px wide in {room}px: its last columns are cut off"
        expect(page.locator("#result_list thead")).to_contain_text("Triggered at")
        shot(page, f"admin-{name}-1440")
