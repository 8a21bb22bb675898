"""A job's log streams onto the open deep link, and its facts show when it ends; phone and laptop widths."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT
from tests.running import JOB_PYTHON

pytestmark = pytest.mark.e2e

SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: logs}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: release}]
"""
JOB = textwrap.dedent("""
    import os, time
    for i in range(1, 9):
        print(f"\\033[32mok\\033[0m rolling out replica {i} of 8", flush=True); time.sleep(0.4)
    open(os.path.join(os.environ["BOSUN_OUTPUT_DIR"], "rollout.txt"), "w").write("8 replicas\\n" * 40)
""")


def start_executor(bosun, tmp_path, project, job):
    """A project whose deployment runs `job` (Python), and an executor for it."""
    http = httpx.Client(base_url=bosun["url"], headers={"x-token": bosun["token"]}, timeout=10)
    jobs = {"jobs": [{"task": "deployment", "command": [JOB_PYTHON, "-c", job]},
                     {"task": "release", "command": [JOB_PYTHON, "-c", "print('released')"]}]}
    http.post("/api/controlPlane/v1/project", json={"name": project, "shipyard": SHIPYARD,
                                                    "jobs": json.dumps(jobs)}).raise_for_status()
    http.post(f"/api/controlPlane/v1/project/{project}/service", json={"serviceName": "carts"}).raise_for_status()
    process = subprocess.Popen([sys.executable, "-m", "bosun", "executor", "--url", bosun["url"], "--project", project,
                                "--name", "e2e-executor", "--work-dir", tempfile.mkdtemp(prefix="e2e-jobs-")], cwd=ROOT,
                               env={**os.environ, "BOSUN_TOKEN": bosun["token"]},
                               stdout=open(tmp_path / "executor.log", "w"), stderr=subprocess.STDOUT)
    return http, process


@pytest.fixture
def executor(bosun, tmp_path):
    http, process = start_executor(bosun, tmp_path, "logs", JOB)
    yield http
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture
def gate():
    """A file the gated job waits for before its last four lines (in /tmp: the job may run as nobody)."""
    path = f"/tmp/bosun-e2e-gate-{uuid.uuid4().hex}"
    yield path
    if os.path.exists(path):
        os.remove(path)


@pytest.fixture
def gated_executor(bosun, tmp_path, gate):
    job = textwrap.dedent(f"""
        import os, time
        for i in range(1, 9):
            if i == 5:
                while not os.path.exists({gate!r}):
                    time.sleep(0.1)
            print(f"\\033[32mok\\033[0m rolling out replica {{i}} of 8", flush=True)
    """)
    http, process = start_executor(bosun, tmp_path, "gated", job)
    yield http
    process.terminate()
    process.wait(timeout=15)


def test_the_log_streams_live_and_the_facts_show(logged_in, bosun, executor, shot):
    page = logged_in
    page.set_viewport_size({"width": 1440, "height": 900})
    context = executor.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "data": {
        "project": "logs", "stage": "dev", "service": "carts"}}).json()["keptnContext"]
    page.goto(f"{bosun['url']}/bridge/project/logs/sequence/{context}")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    log = page.locator(".task").first.locator(".log-text")
    expect(log).to_contain_text("rolling out replica 2 of 8", timeout=10_000)
    expect(page.locator(".task").first.locator(".live-pill")).to_be_visible()
    shot(page, "job-log-running-1440")
    expect(log).to_contain_text("rolling out replica 8 of 8", timeout=10_000)  # pushed, never reloaded
    facts = page.locator(".task").first.locator(".facts")
    expect(facts).to_contain_text("Exit code", timeout=10_000)
    expect(facts).to_contain_text("rollout.txt")
    expect(facts).to_contain_text("e2e-executor")
    expect(page.locator(".task").nth(1).locator(".log-text")).to_contain_text("released", timeout=10_000)
    with page.expect_download() as downloading:  # as the logged-in person, with no API token
        page.locator(".task").first.get_by_role("link", name="Download").click()
    saved = downloading.value
    assert saved.suggested_filename.endswith(".log")
    assert "rolling out replica 8 of 8" in open(saved.path(), encoding="utf-8").read()
    shot(page, "job-log-finished-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(".task").first.locator(".facts")).to_contain_text("Exit code")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"
    shot(page, "job-log-finished-390")


def test_the_log_viewer_follows_searches_and_links_to_a_line(logged_in, bosun, gated_executor, gate, shot):
    page = logged_in
    page.set_viewport_size({"width": 1440, "height": 900})
    context = gated_executor.post("/api/v1/event", json={"type": "sh.keptn.event.dev.delivery.triggered", "data": {
        "project": "gated", "stage": "dev", "service": "carts"}}).json()["keptnContext"]
    page.goto(f"{bosun['url']}/bridge/project/gated/sequence/{context}")
    page.locator(".task").first.get_by_role("link", name="Open the whole log").click()
    lines = page.locator("#log-lines .log-line")
    expect(lines.filter(has_text="rolling out replica 4 of 8")).to_have_count(1, timeout=10_000)
    expect(page.locator("#log-lines .fg-green").first).to_have_text("ok")  # the job's colours
    follow = page.locator("[data-log-follow]")
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(follow).to_have_text("▶ Follow")
    shot(page, "log-viewer-paused-1440")
    follow.click()
    expect(follow).to_have_attribute("aria-pressed", "true")
    open(gate, "w").close()  # the job goes on: its last lines arrive while the page follows
    expect(lines.filter(has_text="rolling out replica 8 of 8")).to_have_count(1, timeout=10_000)
    expect(page.locator("#log-state")).to_contain_text("passed", timeout=10_000)
    expect(follow).to_have_count(0)  # nothing left to follow
    rollout = [text for text in page.locator("#log-lines .lt").all_text_contents() if "rolling" in text]
    assert rollout == [f"ok rolling out replica {i} of 8" for i in range(1, 9)]  # each once, however the polls fell
    page.get_by_placeholder("Search the log").fill("replica 3")
    expect(page.locator("[data-log-count]")).to_have_text("1 matching line")
    page.get_by_label("only matching lines").check()
    expect(page.locator("#log-lines .log-line:visible")).to_have_count(1)
    assert "q=replica+3" in page.url and "only=1" in page.url  # the search is in the link
    shot(page, "log-viewer-search-1440")
    page.get_by_label("only matching lines").uncheck()
    page.locator("#L5 .ln").click()
    assert page.url.endswith("#L5")
    assert page.evaluate("document.querySelector(':target').id") == "L5"
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#L5")).to_be_in_viewport()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the log viewer is {width}px wide on a 390px phone"
    shot(page, "log-viewer-390")
