"""The log viewer: numbered lines to link to, ANSI colours, search, and the new lines of a running job."""

import re
import uuid

import pytest
from django.test import Client

from bridge.ansi import plain, styled_lines
from sequences.models import TaskLog
from sequences.transitions import claims
from tests.helpers import current_task

ESC = "\x1b"


@pytest.fixture
def browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def viewer_path(context, task):
    return f"/bridge/project/sockshop/sequence/{context}/task/{task.triggered_id}/log/view"


def lines_of(html: str) -> list[str]:
    """Each line's text as the page shows it: tags dropped, entities read."""
    found = re.findall(r'<div class="log-line[^"]*" id="L\d+">.*?<span class="lt">(.*?)</span></div>', html)
    return [re.sub(r"<[^>]+>", "", line).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            .replace("&#x27;", "'").replace("&quot;", '"') for line in found]


def test_colours_become_styled_runs_and_other_escapes_are_dropped():
    text = (f"{ESC}[31mFAILED{ESC}[0m test_carts\n{ESC}[1;32mok{ESC}[0m\n"
            f"{ESC}[33mwarning: carried\nover lines{ESC}[39m plain\n"
            f"downloading 10%\rdownloading 100%\n{ESC}]0;title{ESC}\\{ESC}[2K{ESC}[38;5;196mred{ESC}[38;2;0;0;255mblue\n")
    assert styled_lines(text) == [
        [("fg-red", "FAILED"), ("", " test_carts")],
        [("fg-green b", "ok")],
        [("fg-yellow", "warning: carried")],
        [("fg-yellow", "over lines"), ("", " plain")],
        [("", "downloading 100%")],  # a progress bar redrawn with \r: what the terminal showed last
        [("fg-red", "red"), ("fg-blue", "blue")],
    ]
    assert plain(f"a{ESC}[4mb{ESC}[24m\x07c") == "abc"
    assert styled_lines("") == []


def test_the_viewer_numbers_each_line_colours_it_and_escapes_what_the_job_wrote(api, browser, sockshop):
    context = api.trigger()
    task = current_task(context)
    TaskLog.objects.create(task=task, text=f"building\n{ESC}[31merror:{ESC}[0m <script>alert(1)</script>\ndone\n",
                           total_bytes=60)
    page = browser.get(viewer_path(context, task))
    html = page.content.decode()
    assert page.status_code == 200
    assert lines_of(html) == ["building", "error: <script>alert(1)</script>", "done"]
    assert '<a class="ln" href="#L2">2</a>' in html  # a line you can link to
    assert '<span class="fg-red">error:</span>' in html
    assert "<script>alert(1)</script>" not in html
    assert "Download" in html and f"/task/{task.triggered_id}/log?download=1" in html


def test_a_search_marks_the_matching_lines_and_can_show_only_them(api, browser, sockshop):
    context = api.trigger()
    task = current_task(context)
    TaskLog.objects.create(task=task, text="GET /carts 200\nGET /orders 500\nget /carts 200\n", total_bytes=45)
    html = browser.get(viewer_path(context, task), {"q": "CARTS"}).content.decode()
    assert re.findall(r'class="log-line( hit)?" id="L(\d)"', html) == [(" hit", "1"), ("", "2"), (" hit", "3")]
    assert "2 matching lines" in html
    assert 'value="CARTS"' in html
    assert "only-hits" not in html
    narrowed = browser.get(viewer_path(context, task), {"q": "carts", "only": "1"}).content.decode()
    assert 'class="log-view only-hits"' in narrowed


def test_a_running_job_s_page_gets_its_new_lines_and_all_again_once_the_middle_was_cut(api, sockshop, browser):
    context = api.trigger()
    task = current_task(context)
    api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/claim", {"executor": "e1"})
    api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": "one\ntwo\nthr"})
    page = browser.get(viewer_path(context, task)).content.decode()
    assert lines_of(page) == ["one", "two", "thr"]
    assert 'data-ended="2" data-cut="0"' in page  # two lines ended; the third may still grow
    api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": "ee\nfour\n"})
    update = browser.get(viewer_path(context, task), {"after": "2", "cut": "0"}).content.decode()
    assert 'data-first="2" data-ended="4" data-cut="0" data-running="true"' in update
    assert lines_of(update) == ["three", "four"]  # the grown line again, and the new one
    assert re.findall(r'id="L(\d+)"', update) == ["3", "4"]
    chunk = ("x" * 99 + "\n") * 600
    for _ in range(claims.MAX_LOG_CHARS // len(chunk) + 1):  # more than a log keeps: its middle is cut
        assert api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": chunk}).status_code == 200
    api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": "last\n"})
    again = browser.get(viewer_path(context, task), {"after": "4", "cut": "0"}).content.decode()
    assert 'data-first="0"' in again and lines_of(again)[-1] == "last"
    assert "bytes of this log were cut here" in "".join(lines_of(again))


def test_an_ended_job_s_page_says_so_and_stops_asking(api, sockshop, browser):
    context = api.trigger()
    task = current_task(context)
    api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/claim", {"executor": "e1"})
    api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": "deployed\n"})
    api.finish(task, source="e1")  # the executor that started it
    page = browser.get(viewer_path(context, task)).content.decode()
    assert 'data-live="' not in page and "Pause" not in page
    assert "passed" in page
    update = browser.get(viewer_path(context, task), {"after": "0", "cut": "0"}).content.decode()
    assert 'data-running="false"' in update


def test_the_viewer_needs_a_login_and_the_task_s_own_context(api, sockshop, browser):
    context = api.trigger()
    task = current_task(context)
    assert Client().get(viewer_path(context, task)).status_code == 302
    assert browser.get(viewer_path(uuid.uuid4(), task)).status_code == 404
    empty = browser.get(viewer_path(context, task)).content.decode()
    assert "No output yet" not in empty and "This job wrote no output." in empty  # nobody runs it
