"""The Bridge in a real browser against a real server: triggers, live updates, controls, deep links."""

import uuid

import httpx
import pytest
from playwright.sync_api import expect

from sequences.demo import DEMO_SHIPYARD
from tests.e2e.conftest import log_in, start_bosun
from tests.test_up import free_port

pytestmark = pytest.mark.e2e


class Client:
    def __init__(self, bosun):
        self.url = bosun["url"]
        self.http = httpx.Client(base_url=bosun["url"], headers={"x-token": bosun["token"]}, timeout=10)

    def project(self):
        name = f"shop-{uuid.uuid4().hex[:6]}"
        self.http.post("/api/controlPlane/v1/project", json={"name": name, "shipyard": DEMO_SHIPYARD}).raise_for_status()
        for service in ("carts", "orders"):
            self.http.post(f"/api/controlPlane/v1/project/{name}/service", json={"serviceName": service})
        return name

    def trigger(self, project, tag, service="carts"):
        r = self.http.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "source": "e2e",
                                                  "data": {"project": project, "stage": "dev", "service": service,
                                                           "configurationChange": {"values": {"image": f"carts:{tag}"}}}})
        r.raise_for_status()
        return r.json()["keptnContext"]

    def current_task(self, project, context):
        r = self.http.get("/api/controlPlane/v1/sequence-execution", params={"project": project, "keptnContext": context})
        return r.json()["sequenceExecutions"][0]["status"]["currentTask"]

    def send(self, project, context, kind, result="pass", source="e2e-executor"):
        task = self.current_task(project, context)
        r = self.http.post("/api/v1/event", json={
            "type": f"sh.keptn.event.{task['name']}.{kind}", "source": source, "shkeptncontext": context,
            "triggeredid": task["triggeredID"], "data": {"result": result, "status": "succeeded",
                                                          "message": "<script>window.hacked=1</script>"}})
        r.raise_for_status()
        return task


@pytest.fixture
def api(bosun):
    return Client(bosun)


def test_trigger_from_the_form_appears_live_in_an_open_list(logged_in, bosun, api, shot, browser):
    project = api.project()
    page = logged_in
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    expect(page.locator(".seq-row")).to_have_count(0)
    # a second tab, the same person, triggers from the environment page's form
    other = page.context.new_page()
    other.goto(f"{bosun['url']}/bridge/project/{project}/")
    other.get_by_label("Image", exact=True).fill("docker.io/keptnexamples/carts")
    other.get_by_label("Tag", exact=True).fill("0.11.1")
    other.get_by_role("button", name="Trigger").click()
    expect(other.locator("#context-badge")).to_contain_text("Running")
    shot(other, "triggered-sequence")
    row = page.locator(".seq-row")
    expect(row).to_have_count(1)  # appeared without a reload
    expect(row).to_contain_text("docker.io/keptnexamples/carts:0.11.1")
    shot(page, "list-live-insert")


def test_a_waiting_delivery_links_to_its_blocker(logged_in, bosun, api, shot):
    project = api.project()
    first = api.trigger(project, "0.11.1")
    second = api.trigger(project, "0.11.2")
    page = logged_in
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{second}")
    note = page.locator(".waiting-note")
    expect(note).to_contain_text("Waiting in dev/carts: position 1, blocked by")
    shot(page, "waiting-with-blocker")
    note.locator("a.blocker").click()
    expect(page).to_have_url(f"{bosun['url']}/bridge/project/{project}/sequence/{first}")
    expect(page.locator("#context-badge")).to_contain_text("Running")


def test_pause_resume_and_abort_change_the_badge_without_reload(logged_in, bosun, api, shot):
    project = api.project()
    context = api.trigger(project, "1")
    api.send(project, context, "started")
    page = logged_in
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}")
    page.evaluate("window.notReloaded = true")
    badge = page.locator("#context-badge")
    page.get_by_role("button", name="Pause…").click()
    pause = page.locator("#pause-dialog")
    pause.get_by_label("Reason").fill("change freeze")
    shot(page, "pause-dialog")
    pause.get_by_role("button", name="Pause").click()
    expect(badge).to_contain_text("Paused")
    shot(page, "paused")
    page.get_by_role("button", name="Resume…").click()
    page.locator("#resume-dialog").get_by_role("button", name="Resume").click()
    expect(badge).to_contain_text("Running")
    page.get_by_role("button", name="Abort…").click()
    dialog = page.locator("#abort-dialog")
    expect(dialog.locator("input[value=graceful]")).to_be_checked()
    shot(page, "abort-dialog")
    dialog.get_by_role("button", name="Abort").click()
    expect(badge).to_contain_text("Aborting")  # the running task still holds the lane
    page.get_by_role("button", name="Abort…").click()
    expect(dialog.locator("input[value=graceful]")).to_have_count(0)  # escalation is what is left, and it says so
    expect(dialog).to_contain_text("A graceful abort is under way")
    expect(dialog.locator("input[value=force]")).to_be_checked()
    dialog.locator("input[value=kill]").check()
    dialog.get_by_role("button", name="Abort").click()
    expect(badge).to_contain_text("Aborted")
    expect(page.locator(".task .badge").first).to_contain_text("killing")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator(".audit")).to_contain_text("abort:kill")
    expect(page.locator(".audit")).to_contain_text("change freeze")
    expect(page.get_by_role("button", name="Abort…")).to_have_count(0)  # nothing left to abort
    shot(page, "aborted-killed")


def test_a_command_that_no_longer_applies_shows_the_409_message_in_place(logged_in, bosun, api, shot):
    project = api.project()
    context = api.trigger(project, "1")
    page = logged_in
    page.route_web_socket("**/ws/live/**", lambda ws: None)  # a page that missed the news: no pushes
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}")
    api.http.post(f"/api/controlPlane/v1/sequence/{project}/{context}/control", json={"state": "pause"})
    page.get_by_role("button", name="Pause…").click()
    page.locator("#pause-dialog").get_by_role("button", name="Pause").click()
    outcome = page.locator("#outcome")
    expect(outcome).to_contain_text(f"Nothing in context {context} can be paused: it is paused.")
    expect(page.locator("#context-badge")).to_contain_text("Paused")  # and the page shows the truth now
    shot(page, "409-in-place")


def open_new_delivery(page, bosun, api):
    """A delivery in a new project, its page open and live: (project, context)."""
    project = api.project()
    context = api.trigger(project, "1")
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    return project, context


def test_a_command_s_answer_stays_on_the_page_when_a_push_redraws_it(logged_in, bosun, api):
    page, project, context = logged_in, *open_new_delivery(logged_in, bosun, api)
    page.get_by_role("button", name="Pause…").click()
    page.locator("#pause-dialog").get_by_role("button", name="Pause").click()
    outcome = page.locator("#outcome")
    expect(outcome).to_have_text("Done: the sequence is paused.")
    api.send(project, context, "finished")  # the executor's news redraws the page's live part
    expect(page.locator(".task .badge").first).to_contain_text("passed")
    expect(outcome).to_have_text("Done: the sequence is paused.")


def test_a_command_s_answer_is_shown_when_a_push_redraws_the_page_while_it_is_under_way(logged_in, bosun, api):
    page, project, context = logged_in, *open_new_delivery(logged_in, bosun, api)
    held = []

    def hold(route):  # the command reaches Bosun now; its answer reaches the page only when let go
        held.append((route, route.fetch()))

    page.route("**/control", hold)
    page.evaluate("document.getElementById('live').dataset.before = 'yes'")
    page.get_by_role("button", name="Pause…").click()
    page.locator("#pause-dialog").get_by_role("button", name="Pause").click()
    # The pause's own push redraws the live part (and the form that sent the command) first.
    page.wait_for_function("!document.getElementById('live').dataset.before")
    expect(page.locator("#context-badge")).to_contain_text("Paused")
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#outcome")).to_have_text("Done: the sequence is paused.")
def test_force_finish_a_task_from_the_page(logged_in, bosun, api, shot):
    project = api.project()
    context = api.trigger(project, "1")
    page = logged_in
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}")
    page.get_by_role("button", name="Force-finish…").click()
    form = page.locator("dialog[id^=finish-] form")
    form.get_by_label("Result").select_option("pass")
    form.get_by_label("Status").select_option("succeeded")
    form.get_by_label("Reason").fill("deployed by hand")
    shot(page, "force-finish-form")
    form.get_by_role("button", name="Finish task").click()
    expect(page.locator(".task").first).to_contain_text("by admin")
    expect(page.locator(".task").nth(1)).to_contain_text("test")
    expect(page.locator(".audit")).to_contain_text("deployed by hand")


def test_an_update_through_the_api_appears_in_an_open_page_within_a_second(logged_in, bosun, api, shot):
    page, project, context = logged_in, *open_new_delivery(logged_in, bosun, api)
    api.send(project, context, "finished")
    expect(page.locator(".task").nth(1)).to_contain_text("test", timeout=1000)
    # executor payloads are text, never markup
    assert page.evaluate("window.hacked") is None
    expect(page.locator(".task").first).to_contain_text("<script>window.hacked=1</script>")
    shot(page, "api-update-pushed")


def test_deep_links_to_a_stage_and_an_event_open_with_it_selected(logged_in, bosun, api, shot):
    project = api.project()
    context = api.trigger(project, "1")
    task = api.send(project, context, "started")
    page = logged_in
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}/stage/dev")
    expect(page.locator("#stage-dev")).to_have_class("stage-block selected")
    event_id = task["triggeredID"]
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}/event/{event_id}")
    selected = page.locator(f"#event-{event_id}")
    expect(selected).to_have_class("event selected")
    expect(selected.locator("pre")).to_be_visible()
    expect(selected.locator("pre")).to_contain_text('"type": "sh.keptn.event.deployment.triggered"')
    shot(page, "deep-link-event")
    missing = page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}/stage/qa")
    assert missing.status == 404


def test_a_dropped_connection_reconnects_and_resyncs(page, tmp_path, shot):
    """The server goes away (the socket drops), comes back, and the page catches up by itself."""
    port = free_port()
    process, url, token = start_bosun(tmp_path, port)
    try:
        api = Client({"url": url, "token": token})
        project = api.project()
        context = api.trigger(project, "1")
        log_in(page, url)
        page.goto(f"{url}/bridge/project/{project}/sequence/{context}")
        indicator = page.locator("#live-indicator")
        expect(indicator).to_have_attribute("data-state", "live")
        process.kill()
        process.wait()
        expect(indicator).to_have_attribute("data-state", "offline")
        expect(indicator).to_contain_text("offline")
        shot(page, "offline")
        process, url, token = start_bosun(tmp_path, port)
        Client({"url": url, "token": token}).send(project, context, "finished")
        expect(indicator).to_have_attribute("data-state", "live", timeout=20000)
        expect(page.locator(".task").nth(1)).to_contain_text("test")
    finally:
        process.kill()
        process.wait()


def test_a_superseded_delivery_shows_its_badge_and_links_to_the_newer_one(logged_in, bosun, api, shot):
    """The demo's dev delivery runs `queue: newest`: of three deliveries, the middle one is skipped."""
    project = api.project()
    first = api.trigger(project, "1")
    skipped = api.trigger(project, "2")
    newest = api.trigger(project, "3")
    page = logged_in
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{bosun['url']}/bridge/project/{project}/")
    lane = page.locator("#lane-dev-carts")
    expect(lane.locator(".lane-policy")).to_have_text("newest first: 1 older delivery will be skipped")
    expect(lane.get_by_role("link", name="2 waiting")).to_be_visible()
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{skipped}")
    expect(page.locator(".waiting-note .policy")).to_contain_text("it will be skipped")

    api.send(project, first, "finished", result="fail")  # dev frees up: the newest starts, the older is superseded
    expect(page.locator("#context-badge")).to_contain_text("Superseded")  # live, no reload
    link = page.locator("a.superseded-by")
    expect(link).to_contain_text(newest[:8])
    shot(page, "superseded-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "superseded-390")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 392)
        .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone: {wide}"
    link.click()
    page.wait_for_url(f"**/sequence/{newest}")
    expect(page.locator("#context-badge")).to_contain_text("Running")

    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/?state=superseded")
    expect(page.locator(".seq-row")).to_have_count(1)
    expect(page.locator(f"#row-{skipped}")).to_contain_text("Superseded")
