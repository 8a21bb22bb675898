"""A job's log streams onto the open deep link, and its facts show when it ends; phone and laptop widths."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

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
        print(f"rolling out replica {i} of 8", flush=True); time.sleep(0.4)
    open(os.path.join(os.environ["BOSUN_OUTPUT_DIR"], "rollout.txt"), "w").write("8 replicas\\n" * 40)
""")


@pytest.fixture
def executor(bosun, tmp_path):
    http = httpx.Client(base_url=bosun["url"], headers={"x-token": bosun["token"]}, timeout=10)
    jobs = {"jobs": [{"task": "deployment", "command": [JOB_PYTHON, "-c", JOB]},
                     {"task": "release", "command": [JOB_PYTHON, "-c", "print('released')"]}]}
    http.post("/api/controlPlane/v1/project", json={"name": "logs", "shipyard": SHIPYARD,
                                                    "jobs": json.dumps(jobs)}).raise_for_status()
    http.post("/api/controlPlane/v1/project/logs/service", json={"serviceName": "carts"}).raise_for_status()
    process = subprocess.Popen([sys.executable, "-m", "bosun", "executor", "--url", bosun["url"], "--project", "logs",
                                "--name", "e2e-executor", "--work-dir", tempfile.mkdtemp(prefix="e2e-jobs-")], cwd=ROOT,
                               env={**os.environ, "BOSUN_TOKEN": bosun["token"]},
                               stdout=open(tmp_path / "executor.log", "w"), stderr=subprocess.STDOUT)
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
