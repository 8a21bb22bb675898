"""Job definitions and the executor's side of the API: validation, claims, bounded logs, facts, kill confirmation."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sequences.engine import Engine
from sequences.models import Event, Project
from sequences.models import TaskExecution as TE
from sequences.models import TaskLog
from sequences.rules import jobs
from sequences.transitions import claims as executors
from tests.helpers import current_task, run_of

JOBS = """\
kind: Jobs
jobs:
  - task: deployment
    stages: [dev]
    command: [python3, deploy.py, --fast]
    env: {MODE: quick, RETRIES: 3}
    timeout: 5m
    killGrace: 2s
  - name: deploy-anywhere
    task: deployment
    command: [python3, deploy.py]
"""


def test_job_definitions_are_read_with_their_defaults():
    found = jobs.parse(JOBS)
    assert [j.name for j in found] == ["deployment", "deploy-anywhere"]
    first = found[0]
    assert first.command == ("python3", "deploy.py", "--fast")
    assert first.env == {"MODE": "quick", "RETRIES": "3"}
    assert (first.timeout, first.kill_grace) == (300.0, 2.0)
    assert found[1].kill_grace == 5.0
    assert jobs.find(found, "deployment", "dev", "carts") is first
    assert jobs.find(found, "deployment", "staging", "carts").name == "deploy-anywhere"
    assert jobs.find(found, "test", "dev", "carts") is None
    assert jobs.parse("") == []


@pytest.mark.parametrize("text,fragment", [
    ("jobs: {task: x}", "line 1: jobs: must be a list of jobs"),
    ("jobs:\n  - command: [a]", "line 2: jobs[0].task: is required"),
    ("jobs:\n  - task: t\n    command: ./deploy.sh --fast", "line 3: jobs[0].command: must be a list of arguments"),
    ("jobs:\n  - task: t\n    command: []", "line 3: jobs[0].command: must be a non-empty list"),
    ("jobs:\n  - task: t\n    command: [a]\n    timeout: soon", "line 4: jobs[0].timeout"),
    ("jobs:\n  - task: t\n    command: [a]\n    env: {1X: y}", "line 4: jobs[0].env: '1X' is not an environment"),
    ("jobs:\n  - task: t\n    command: [a]\n    shell: true", "line 4: jobs[0].shell: is not a job field"),
    ("jobs:\n  - task: t\n    command: [a]\n  - task: t\n    command: [b]", "line 4: jobs[1].name: 't' is used"),
    ("kind: Shipyard\njobs: []", "line 1: kind: must be Jobs"),
    ("jobs: [", "line 1: document: not valid YAML"),
    ('jobs:\n  - task: t\n    command: ["a\\0b"]', "line 3: jobs[0].command: contains a NUL character"),
    ('jobs:\n  - task: t\n    command: [a]\n    env: {X: "a\\0"}', "line 4: jobs[0].env.X: contains a NUL"),
    ("jobs:\n  - task: t\n    command: [a]\n    killGrace: 2h", "line 4: jobs[0].killGrace: must be more than 0s "
                                                              "and at most 10m"),
    ("jobs:\n  - task: t\n    command: [a]\n    timeout: 0s", "line 4: jobs[0].timeout: must be more than 0s"),
])
def test_bad_job_definitions_name_the_line_and_field(text, fragment):
    with pytest.raises(jobs.JobsError) as caught:
        jobs.parse(text)
    assert fragment in str(caught.value)


def test_jobs_are_uploaded_with_the_project_and_read_back(admin_api, db):
    from sequences.demo import DEMO_SHIPYARD

    response = admin_api.post("/api/controlPlane/v1/project", {"name": "shop", "shipyard": DEMO_SHIPYARD, "jobs": JOBS})
    assert response.status_code == 201
    listed = admin_api.get("/api/controlPlane/v1/project/shop/jobs").json()
    assert listed["jobs"][0] == {"name": "deployment", "task": "deployment", "stages": ["dev"], "services": [],
                                 "command": ["python3", "deploy.py", "--fast"], "workingDir": "",
                                 "env": {"MODE": "quick", "RETRIES": "3"}, "timeout": 300.0, "killGrace": 2.0}


def test_bad_jobs_are_refused_and_change_nothing(admin_api, sockshop):
    bad = admin_api.put("/api/controlPlane/v1/project/sockshop", {"jobs": "jobs:\n  - task: t\n    command: ls -l"})
    assert bad.status_code == 400
    assert "line 3: jobs[0].command" in bad.json()["message"]
    assert Project.objects.get(name="sockshop").jobs == ""
    good = admin_api.put("/api/controlPlane/v1/project/sockshop", {"jobs": JOBS})
    assert good.status_code == 200 and good.json()["jobs"] == JOBS


def claim(api, task, executor="exec-a", **body):
    return api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/claim", {"executor": executor, **body})


def test_one_claim_wins_and_is_recorded_as_started(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    first = claim(api, task, "exec-a", killGrace=2, machine={"machine": "host-a", "platform": "Linux"})
    assert first.status_code == 200 and first.json()["claimedBy"] == "exec-a"
    assert first.json()["heartbeatTimeoutSeconds"] == 30.0
    assert claim(api, task, "exec-a").status_code == 200  # its own retry
    second = claim(api, task, "exec-b")
    assert second.status_code == 409 and "claimed by exec-a" in second.json()["message"]
    task.refresh_from_db()
    assert (task.state, task.claimed_by, task.kill_grace, task.facts["machine"]) == ("started", "exec-a", 2.0, "host-a")
    assert task.heartbeat_deadline is not None  # executor-run tasks heartbeat (30s by default)
    started = Event.objects.filter(triggered_id=task.triggered_id, type="sh.keptn.event.deployment.started")
    assert [e.source for e in started] == ["exec-a"]


def test_the_log_keeps_its_head_and_tail_and_counts_what_was_cut(api, sockshop):
    task = current_task(api.trigger())
    assert claim(api, task).status_code == 200
    for chunk in range(30):
        lines = "".join(f"chunk {chunk:02d} line {i:03d} " + "x" * 81 + "\n" for i in range(600))
        assert api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": lines}).status_code == 200
    entry = TaskLog.objects.get(task=task)
    assert len(entry.text) == executors.MAX_LOG_CHARS
    assert entry.total_bytes == 30 * 600 * 100
    assert entry.cut_bytes == entry.total_bytes - executors.MAX_LOG_CHARS
    text = api.get(f"/api/controlPlane/v1/task/{task.triggered_id}/log").content.decode()
    assert text.startswith("chunk 00 line 000 ")
    assert f"\n[... {entry.cut_bytes} bytes of this log were cut here; the last ones follow ...]\n" in text
    assert text.endswith("chunk 29 line 599 " + "x" * 81 + "\n")
    too_big = api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/log", {"text": "y" * 70_000})
    assert too_big.status_code == 413


def test_facts_keep_known_fields_of_the_right_type(api, sockshop):
    task = current_task(api.trigger())
    assert claim(api, task).status_code == 200
    response = api.post(f"/api/controlPlane/v1/task/{task.triggered_id}/facts", {
        "exitCode": 3, "computationSeconds": 2, "machine": "h1", "outputFiles": [{"name": "a.txt", "size": 10},
                                                                                 {"bogus": 1}],
        "exitCodeAsText": "three", "pid": "not a number"})
    assert response.status_code == 200
    facts = api.get(f"/api/controlPlane/v1/task/{task.triggered_id}").json()["facts"]
    assert facts == {"exitCode": 3, "computationSeconds": 2.0, "machine": "h1",
                     "outputFiles": [{"name": "a.txt", "size": 10}], "outputBytes": 10}


@pytest.mark.parametrize("body", ['{"computationSeconds": NaN}', '{"cpuSeconds": Infinity}',
                                  '{"outputFiles": [{"name": "a", "size": -Infinity}]}'])
def test_nan_or_infinity_in_facts_is_refused_and_changes_nothing(api, sockshop, body):
    task = current_task(api.trigger())
    assert claim(api, task, machine={"machine": "h1"}).status_code == 200
    refused = api.client.post(f"/api/controlPlane/v1/task/{task.triggered_id}/facts", body,
                              content_type="application/json", **api.headers)
    assert refused.status_code == 400
    assert refused.json()["message"] == "The body is not valid JSON (NaN and Infinity are not JSON numbers)."
    assert api.get(f"/api/controlPlane/v1/task/{task.triggered_id}").json()["facts"] == {"machine": "h1"}


def test_only_the_claiming_executor_reports_log_and_facts_and_only_while_the_task_runs(api, admin_api, sockshop):
    task = current_task(api.trigger())
    path = f"/api/controlPlane/v1/task/{task.triggered_id}"
    assert api.post(f"{path}/log", {"text": "too early\n"}).status_code == 409  # nobody runs it yet
    assert claim(api, task, machine={"machine": "h1"}).status_code == 200
    other = admin_api.post(f"{path}/facts", {"exitCode": 0, "machine": "forged"})
    assert other.status_code == 403
    assert other.json()["message"] == ("Task 'deployment' is run by exec-a; only its executor reports its log and "
                                       "facts.")
    assert admin_api.post(f"{path}/log", {"text": "forged\n"}).status_code == 403
    assert api.post(f"{path}/log", {"text": "deploying\n"}).status_code == 200
    api.finish(task, source="exec-a")
    late = api.post(f"{path}/facts", {"exitCode": 1})
    assert late.status_code == 409
    assert late.json()["message"] == "Task 'deployment' is finished: its log and facts are closed."
    assert api.post(f"{path}/log", {"text": "after the end\n"}).status_code == 409
    assert api.get(f"{path}/log").content == b"deploying\n"
    assert api.get(path).json()["facts"] == {"machine": "h1"}


def test_a_task_no_executor_started_has_nothing_to_kill_after_a_force_abort(ctl, sockshop):
    context = ctl.trigger()
    assert ctl.control(context, "abort", mode="force").status_code == 200
    assert current_task(context).state == TE.ABANDONED
    response = ctl.control(context, "abort", mode="kill")
    assert response.status_code == 409
    assert response.json()["message"] == f"Nothing in context {context} can be aborted (kill): it is aborted."
    assert current_task(context).state == TE.ABANDONED


def test_a_kill_nobody_confirms_ends_killed_with_a_note(ctl, sockshop):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        context = ctl.trigger()
        task = current_task(context)
        claim(ctl, task, "exec-a", killGrace=2)
        assert ctl.control(context, "abort", mode="kill").status_code == 200
        assert current_task(context).state == TE.KILLING
        clock.shift(timedelta(seconds=6))
        Engine(repair_every=3600).step()
        assert current_task(context).state == TE.KILLING  # 2s grace + 5s margin not over yet
        clock.shift(timedelta(seconds=2))
        Engine(repair_every=3600).step()
        task = current_task(context)
        assert task.state == TE.KILLED
        assert "No executor confirmed the kill within 8s" in task.message
        assert run_of(context).state == "aborted"


def test_a_confirmed_kill_is_killed_without_a_note(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    claim(ctl, task, "exec-a")
    ctl.control(context, "abort", mode="kill")
    heartbeat = ctl.post(f"/api/controlPlane/v1/task/{task.triggered_id}/heartbeat")
    assert heartbeat.status_code == 409 and heartbeat.json()["killRequested"] is True
    assert ctl.post(f"/api/controlPlane/v1/task/{task.triggered_id}/killed").status_code == 200
    task.refresh_from_db()
    assert task.state == TE.KILLED and "confirmed" not in task.message
