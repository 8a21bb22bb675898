"""Re-run an ended sequence and give a two-person approval from the Bridge, at laptop and phone width."""

import os
import subprocess
import sys
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: gates}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
        - name: release
          tasks:
            - name: approval
              properties: {pass: manual, warning: manual}
              approval: {required: 2}
            - name: deployment
"""


def second_person(bosun) -> str:
    """An operator other than admin, made in the running Bosun's database; returns their API token."""
    code = ("from django.contrib.auth.models import Permission, User; from sequences.models import ApiToken; "
            f"u = User.objects.create_user('robin-{uuid.uuid4().hex[:4]}', password='x'); "
            "u.user_permissions.add(Permission.objects.get(codename='operate_sequences')); "
            "print(ApiToken.issue(u, 'e2e')[1])")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "BOSUN_DATA_DIR": str(bosun["data"])}, check=True)
    return done.stdout.strip().splitlines()[-1]


def new_project(bosun, prefix):
    """A project of SHIPYARD with the service carts, named `prefix`-something: (the API's client, its name)."""
    http = httpx.Client(base_url=bosun["url"], headers={"x-token": bosun["token"]}, timeout=10)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    http.post("/api/controlPlane/v1/project", json={"name": name, "shipyard": SHIPYARD}).raise_for_status()
    http.post(f"/api/controlPlane/v1/project/{name}/service", json={"serviceName": "carts"}).raise_for_status()
    return http, name


@pytest.fixture
def gates(bosun):
    return new_project(bosun, "gates")


def trigger(http, project, sequence):
    answer = http.post("/api/v1/event", json={"type": f"sh.keptn.event.dev.{sequence}.triggered", "source": "e2e",
                                              "data": {"project": project, "stage": "dev", "service": "carts"}})
    answer.raise_for_status()
    return answer.json()["keptnContext"]


def current(http, project, context, index=0):
    runs = http.get("/api/controlPlane/v1/sequence-execution",
                    params={"project": project, "keptnContext": context}).json()["sequenceExecutions"]
    return runs[index]["status"]["currentTask"]


def fits(page, width):
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{page.url} is {wide}px wide at {width}px"


def failed_delivery(http, project, message="the registry answered 503"):
    """A delivery whose first task (deployment) failed with an error: its context."""
    context = trigger(http, project, "delivery")
    task = current(http, project, context)
    http.post("/api/v1/event", json={"type": "sh.keptn.event.deployment.finished", "source": "e2e",
                                     "shkeptncontext": context, "triggeredid": task["triggeredID"],
                                     "data": {"result": "fail", "status": "errored",
                                              "message": message}}).raise_for_status()
    return context


def open_live(page, bosun, project, context):
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")


def confirm(page, button, question, reason, *, width, shot, name, action):
    """Open a command's dialog with `button`, check it asks `question`, give the reason, check the page fits
    and take its picture, then press `action`."""
    page.get_by_role("button", name=button).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(question)
    dialog.get_by_label("Reason").fill(reason)
    fits(page, width)
    shot(page, f"{name}-{width}")
    dialog.get_by_role("button", name=action).click()


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_a_failed_delivery_is_re_run_from_its_page(logged_in, bosun, gates, shot, width, height):
    http, project = gates
    page = logged_in
    page.set_viewport_size({"width": width, "height": height})
    context = failed_delivery(http, project)
    open_live(page, bosun, project, context)
    confirm(page, "↻ Re-run…", "Re-run delivery in dev?", "the registry was down", width=width, shot=shot,
            name="rerun-dialog", action="Re-run")
    expect(page.locator(".flash")).to_contain_text("Re-run: delivery of carts in dev is started.")
    expect(page.locator(".rerun-note").first).to_contain_text("Re-run as delivery in dev")
    expect(page.locator(".rerun-note").nth(1)).to_contain_text("Re-run of delivery in dev")
    expect(page.get_by_role("button", name="↻ Re-run…")).to_have_count(0)  # the re-run has not ended
    fits(page, width)
    shot(page, f"rerun-done-{width}")


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_an_approval_needs_two_people(logged_in, bosun, gates, shot, width, height):
    http, project = gates
    page = logged_in
    page.set_viewport_size({"width": width, "height": height})
    context = trigger(http, project, "release")
    approval = current(http, project, context)
    page.goto(f"{bosun['url']}/bridge/project/{project}/sequence/{context}")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    expect(page.locator(".still-needed")).to_have_text("Still needed: 2 approvals, each from a different person.")
    page.get_by_role("button", name="✔ Approve…").click()
    page.get_by_role("dialog").get_by_role("button", name="Approve").click()
    expect(page.locator(".approved-by")).to_contain_text("Approved by admin")
    expect(page.locator(".still-needed")).to_have_text(
        "Still needed: 1 more approval, each from a different person.")
    expect(page.locator(".nobody-takes")).to_have_count(0)  # people decide an approval, not executors
    fits(page, width)
    shot(page, f"approval-one-of-two-{width}")
    robin = httpx.Client(base_url=bosun["url"], headers={"x-token": second_person(bosun)}, timeout=10)
    answer = robin.post(f"/api/controlPlane/v1/task/{approval['triggeredID']}/approve", json={"reason": "ok"})
    assert answer.status_code == 200 and answer.json()["state"] == "finished", answer.text
    expect(page.locator(".task").first).to_contain_text("passed")  # pushed to the open page
    expect(page.locator(".task").first).to_contain_text("Approved by admin and robin-")
    shot(page, f"approval-done-{width}")
