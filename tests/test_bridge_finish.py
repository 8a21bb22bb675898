"""The Bridge says what blocks and what is blocked, in words that mean what they say, and offers only what applies."""

import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from sequences.models import Event
from sequences.models import SequenceExecution as SE
from sequences.transitions import commands as control
from sequences.transitions import timeouts
from tests.helpers import current_task, run_of

OPERATOR = control.Actor("tests", "api")


@pytest.fixture
def browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def page_of(browser, context) -> str:
    response = browser.get(f"/bridge/project/sockshop/sequence/{context}")
    assert response.status_code == 200
    return response.content.decode()


def text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_the_holder_says_who_waits_behind_it_and_its_abort_dialog_too(browser, api, sockshop):
    holder = api.trigger(tag="1")
    behind = [api.trigger(tag=str(n)) for n in (2, 3)]
    page = page_of(browser, holder)
    note = page[page.index('class="behind-note"'):]
    assert "2 sequences wait behind this one" in text(note[:note.index("</p>")])
    for context in behind:
        assert f'href="/bridge/project/sockshop/sequence/{context}"' in note
    dialog = page[page.index('id="abort-dialog"'):]
    assert "2 sequences wait behind this one" in text(dialog[:dialog.index("</dialog>")])


def test_after_an_abort_the_page_links_to_the_sequence_that_took_the_lane(browser, api, sockshop):
    holder, next_one = api.trigger(tag="1"), api.trigger(tag="2")
    assert control.control_sequence("sockshop", holder, "abort", actor=OPERATOR, mode="force").code == 200
    page = page_of(browser, holder)
    assert re.search(rf'The lane went to <a class="successor" href="/bridge/project/sockshop/sequence/{next_one}">', page)


def test_a_task_nobody_started_says_it_times_out_unless_an_executor_starts_it(browser, api, sockshop):
    context = api.trigger(tag="1")
    words = text(page_of(browser, context))
    assert re.search(r"times out in \d+s unless an executor starts it", words)
    assert "starts in" not in words


def test_a_running_task_says_how_long_it_runs_and_when_a_heartbeat_is_due_calmly(browser, api, ops):
    context = api.trigger(project="ops")
    api.finish(current_task(context))  # the deployment passed: the test runs, with heartbeats expected
    test = current_task(context)
    assert (test.name, api.task_event(test, "started", source="jmeter").status_code) == ("test", 202)
    with time_machine.travel(timezone.now() + timedelta(seconds=20), tick=False):
        words = text(browser.get(f"/bridge/project/ops/sequence/{context}").content.decode())
    assert re.search(r"running for 2[01]s", words)
    assert re.search(r"expects a heartbeat within (39|40)s", words)
    assert "unless an executor sends a heartbeat" not in words


def test_a_task_with_two_executors_shows_which_finished_and_which_it_waits_for(browser, api, sockshop):
    context = api.trigger(tag="1")
    task = current_task(context)
    for source in ("helm", "jmeter"):
        assert api.task_event(task, "started", source=source).status_code == 202
    assert api.task_event(task, "finished", source="helm", result="pass", status="succeeded").status_code == 202
    words = text(page_of(browser, context))
    assert "helm: finished (pass)" in words and "jmeter: running" in words
    assert "the task ends when every executor that started it has finished" in words


def test_the_timeline_shows_tasks_and_stages_still_ahead(browser, api, sockshop):
    context = api.trigger(tag="1")
    page = page_of(browser, context)
    pending = re.findall(r'<li class="task pending"><div class="task-head"><span class="task-name">(\w+)', page)
    assert pending[:3] == ["test", "evaluation", "release"]  # dev's tasks after the running deployment
    assert re.findall(r'aria-label="(\w+) delivery: not reached yet"', page) == ["staging", "production"]


def test_a_timeout_reason_is_shown_once_where_it_happened(browser, api, sockshop):
    context = api.trigger(tag="1")
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        timeouts.fire_due()
    assert run_of(context).state == SE.TIMED_OUT
    page = page_of(browser, context)
    timeline = page[:page.index('<section class="audit">')]  # the audit trail keeps its own record
    assert text(timeline).count("No executor started task 'deployment' within 10m0s") == 1
    assert "not reached yet" not in page  # a context that ended has nothing ahead


def test_a_waiting_sequence_shows_queued_since_and_counts_its_time_from_its_start(browser, api, sockshop):
    api.trigger(tag="1")
    waiting = api.trigger(tag="2")
    words = text(page_of(browser, waiting))
    assert re.search(r"Queued since \w+ \d+, \d\d:\d\d:\d\d \(\d+s\)", words)
    listing = browser.get("/bridge/project/sockshop/sequence/").content.decode()
    row = text(listing[listing.index(f'id="row-{waiting}"'):][:3000].split("</tr>")[0])
    assert "queued since" in row and "waiting" in row


def test_aborted_sequences_are_not_counted_as_failed(browser, api, sockshop):
    context = api.trigger(tag="1")
    assert control.control_sequence("sockshop", context, "abort", actor=OPERATOR).code == 200
    assert run_of(context).result == "fail"  # the API keeps Keptn's result of an aborted sequence
    page = browser.get("/bridge/").content.decode()
    assert "✖ 0</dd>" in page


def test_a_finished_sequence_offers_no_abort_and_an_aborted_one_only_kill_of_a_running_task(browser, api, sockshop):
    unstarted = api.trigger(tag="1")
    assert control.control_sequence("sockshop", unstarted, "abort", actor=OPERATOR, mode="force").code == 200
    page = page_of(browser, unstarted)
    assert "abort-dialog" not in page and "Kill its abandoned task" not in page  # no process to kill
    started = api.trigger(tag="2")
    assert api.task_event(current_task(started), "started").status_code == 202
    assert control.control_sequence("sockshop", started, "abort", actor=OPERATOR, mode="force").code == 200
    page = page_of(browser, started)
    assert "Kill its abandoned task…" in page and 'value="graceful"' not in page and 'value="force"' not in page


def test_the_trigger_form_requires_image_and_tag_for_a_delivery_and_keeps_what_was_typed(browser, sockshop):
    before = (SE.objects.count(), Event.objects.count())
    response = browser.post("/bridge/project/sockshop/trigger", {
        "target": "dev|delivery", "service": "orders", "image": "docker.io/keptnexamples/orders", "tag": "",
        "labels": "owner=me\nnot a label"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "A delivery needs the tag to deploy" in page and "is not." in page
    assert 'value="docker.io/keptnexamples/orders"' in page and "<option selected>orders</option>" in page
    assert 'aria-invalid="true"' in page
    assert (SE.objects.count(), Event.objects.count()) == before
    response = browser.post("/bridge/project/sockshop/trigger", {"target": "dev|delivery", "service": "carts"})
    assert response.status_code == 400 and "A delivery needs the image to deploy" in response.content.decode()
    # another sequence needs no image
    response = browser.post("/bridge/project/sockshop/trigger", {"target": "dev|evaluation", "service": "carts"})
    assert response.status_code == 302


def test_errors_are_styled_pages_inside_the_bridge_with_a_way_back(browser, viewer_user, sockshop):
    response = browser.get("/bridge/project/nope/")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'class="topbar"' in page and "Back to the projects" in page and "Not found" in page
    viewer = Client()
    viewer.force_login(viewer_user)
    response = viewer.get("/bridge/project/sockshop/sequence/nope/task/x/kill")  # a GET where only POST goes
    assert response.status_code == 405
    assert browser.get("/favicon.ico").status_code == 301
    assert 'rel="icon"' in browser.get("/bridge/").content.decode()


def test_a_server_error_page_needs_no_request_context():
    page = render_to_string("500.html")
    assert "Something went wrong" in page and "Back to the projects" in page


def test_the_timeline_puts_each_task_on_one_time_axis_with_its_duration(browser, api, sockshop):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        context = api.trigger(tag="1")
        deployment = current_task(context)
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        api.task_event(deployment, "started")
    with time_machine.travel(start + timedelta(seconds=130), tick=False):
        api.finish(deployment)
    with time_machine.travel(start + timedelta(seconds=135), tick=False):
        api.task_event(current_task(context), "started")
    with time_machine.travel(start + timedelta(seconds=190), tick=False):
        page = page_of(browser, context)
    timeline = page[page.index('class="durations"'):page.index('class="timeline"')]
    rows = re.findall(r'<li class="gantt-row" title="([^"]+)">', timeline)
    assert [unescape(row) for row in rows] == ["dev · deployment: passed, 2m 0s", "dev · test: running, 55s"]
    # deployment: triggered at 0 of 190 s, waited 10 s of its 130 s bar; test from 130 s, still running
    assert 'style="left: 0.00%; width: 68.42%"><span class="gantt-waited" style="width: 7.69%">' in timeline
    assert 'style="left: 68.42%; width: 31.58%"><span class="gantt-waited" style="width: 8.33%">' in timeline
    assert '<span class="elapsed" data-since=' in timeline  # the running one's duration ticks on the page
    assert "3m 10s since the trigger" in text(timeline)
