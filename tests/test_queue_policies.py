"""Queue policies (the shipyard's `queue` on a sequence): newest, cancel-in-progress, parallel; follow-ups first."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sequences import freeze_config
from sequences.configuration import create_project
from sequences.models import ControlAction, Event, SequenceExecution
from sequences.transitions import timeouts
from tests.helpers import current_task, run_of

SE = SequenceExecution

QUEUES_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata: {name: queues}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          queue: newest
          tasks: [{name: deployment, startTimeout: 2m}, {name: test}]
        - name: hotfix
          queue: cancel-in-progress
          tasks: [{name: deployment}, {name: test}]
        - name: smoke
          queue: parallel
          tasks: [{name: probe}]
        - name: remediation
          tasks: [{name: action}]
    - name: production
      sequences:
        - name: delivery
          queue: newest
          tasks: [{name: deployment}]
        - name: rollback
          triggeredOn:
            - event: production.delivery.finished
              selector: {match: {result: fail}}
          tasks: [{name: rollback}]
"""


@pytest.fixture
def queues(db):
    return create_project("queues", QUEUES_SHIPYARD, services=["carts"])


def trigger(api, sequence="delivery", stage="dev", tag="1"):
    return api.trigger(project="queues", stage=stage, sequence=sequence, tag=tag)


def execution(api, context):
    response = api.get("/api/controlPlane/v1/sequence-execution", project="queues", keptnContext=context)
    assert response.status_code == 200, response.json()
    return response.json()["sequenceExecutions"][0]


def finished_event(context, stage="dev", name="delivery"):
    return Event.objects.get(context=context, type=f"sh.keptn.event.{stage}.{name}.finished").payload


def test_newest_starts_the_newest_waiting_delivery_and_supersedes_the_older_ones(ctl, queues):
    running = trigger(ctl, tag="1")
    older, old, newest = (trigger(ctl, tag=str(n)) for n in (2, 3, 4))
    assert [run_of(c).state for c in (older, old, newest)] == [SE.WAITING] * 3

    # the API says which policy governs the lane and what it will do
    queue = execution(ctl, older)["queue"]
    assert queue["policy"] == "newest"
    assert queue["description"] == "newest first: 2 older deliveries will be skipped"
    assert (queue["position"], queue["willBeSkipped"]) == (1, True)
    assert execution(ctl, newest)["queue"]["willBeSkipped"] is False

    ctl.finish(current_task(running))
    ctl.finish(current_task(running))  # the lane is released in this request
    assert run_of(running).state == SE.FINISHED
    assert run_of(newest).state == SE.STARTED
    assert current_task(newest).name == "deployment"
    for context in (older, old):
        run = run_of(context)
        assert (run.state, run.result, run.status) == (SE.SUPERSEDED, "fail", "aborted")
        assert not run.task_executions.exists(), "a superseded sequence never triggers a task"
        answer = execution(ctl, context)
        assert answer["status"]["state"] == "superseded"
        assert answer["supersededBy"]["keptnContext"] == newest
        event = finished_event(context)
        assert (event["data"]["status"], event["data"]["result"]) == ("aborted", "fail")
        assert f"Superseded by a newer delivery (context {newest})" in event["data"]["message"]
        assert "'newest' queue policy" in event["data"]["message"]
        audit = ControlAction.objects.get(context=context)
        assert (audit.command, audit.actor, audit.state_before, audit.state_after) == (
            "supersede", "queue policy", "waiting", "superseded")
    superseded = ctl.get("/api/controlPlane/v1/sequence-execution", project="queues", status="superseded").json()
    assert {e["scope"]["keptnContext"] for e in superseded["sequenceExecutions"]} == {older, old}


def test_newest_passes_over_a_paused_waiting_delivery_and_keeps_it(ctl, queues):
    running = trigger(ctl, tag="1")
    older, paused = trigger(ctl, tag="2"), trigger(ctl, tag="3")
    assert ctl.control(paused, "pause", project="queues").status_code == 200
    ctl.finish(current_task(running))
    ctl.finish(current_task(running))
    assert run_of(older).state == SE.STARTED  # the newest that is not paused
    paused_run = run_of(paused)
    assert (paused_run.state, paused_run.state_before_pause) == (SE.PAUSED, SE.WAITING)
    assert ctl.control(paused, "resume", project="queues").status_code == 200
    assert run_of(paused).state == SE.WAITING
    assert not SE.objects.filter(state=SE.SUPERSEDED).exists()


def test_newest_after_the_newest_was_aborted_starts_the_next_newest(ctl, queues):
    running = trigger(ctl, tag="1")
    first, second, third = (trigger(ctl, tag=str(n)) for n in (2, 3, 4))
    assert ctl.control(third, "abort", project="queues").status_code == 200
    assert run_of(third).state == SE.ABORTED
    assert execution(ctl, first)["queue"]["description"] == "newest first: 1 older delivery will be skipped"
    ctl.finish(current_task(running), result="fail")
    assert run_of(second).state == SE.STARTED
    assert run_of(first).state == SE.SUPERSEDED
    assert run_of(first).superseded_by == run_of(second)


def test_newest_applies_when_a_timeout_releases_the_lane(ctl, queues):
    running = trigger(ctl, tag="1")
    older, newest = trigger(ctl, tag="2"), trigger(ctl, tag="3")
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        timeouts.fire_due()  # nobody started 'deployment' within 2m
    assert run_of(running).state == SE.TIMED_OUT
    assert run_of(newest).state == SE.STARTED
    assert run_of(older).state == SE.SUPERSEDED


def test_newest_keeps_fifo_with_other_sequences_of_the_lane(ctl, queues):
    running = trigger(ctl, tag="1")
    remediation = trigger(ctl, sequence="remediation")
    older, newest = trigger(ctl, tag="2"), trigger(ctl, tag="3")
    ctl.finish(current_task(running), result="fail")
    assert run_of(remediation, name="remediation").state == SE.STARTED  # it was first in line
    assert [run_of(c).state for c in (older, newest)] == [SE.WAITING, SE.WAITING]
    ctl.finish(current_task(remediation, name="remediation"))
    assert run_of(newest).state == SE.STARTED
    assert run_of(older).state == SE.SUPERSEDED


def test_cancel_in_progress_aborts_the_running_one_gracefully_then_takes_the_lane_next(ctl, queues):
    running = trigger(ctl, sequence="hotfix", tag="1")
    task = current_task(running, name="hotfix")
    assert ctl.task_event(task, "started").status_code == 202
    remediation = trigger(ctl, sequence="remediation")  # waits, triggered before the new hotfix
    newer = trigger(ctl, sequence="hotfix", tag="2")

    run = run_of(running, name="hotfix")
    assert run.state == SE.ABORTING  # graceful: the running task is asked to stop, the lane stays held
    task.refresh_from_db()
    assert task.cancel_requested_at is not None
    assert run_of(newer, name="hotfix").state == SE.WAITING
    assert execution(ctl, newer)["queue"]["position"] == 1  # ahead of the remediation queued before it
    audit = ControlAction.objects.get(context=running)
    assert (audit.command, audit.actor, audit.source) == ("abort:graceful", "queue policy", "engine")
    assert newer in audit.reason

    ctl.finish(task, result="fail")  # the task ends: the old hotfix is aborted and the new one takes the lane
    assert run_of(running, name="hotfix").state == SE.ABORTED
    assert run_of(newer, name="hotfix").state == SE.STARTED
    assert run_of(remediation, name="remediation").state == SE.WAITING


def test_cancel_in_progress_with_nothing_running_takes_the_lane_in_the_same_request(ctl, queues):
    running = trigger(ctl, sequence="hotfix", tag="1")  # its task is triggered, no executor started it
    newer = trigger(ctl, sequence="hotfix", tag="2")
    assert run_of(running, name="hotfix").state == SE.ABORTED
    assert run_of(newer, name="hotfix").state == SE.STARTED


def test_cancel_in_progress_aborts_a_paused_holder_and_supersedes_the_waiting_one(ctl, queues):
    running = trigger(ctl, sequence="hotfix", tag="1")
    assert ctl.task_event(current_task(running, name="hotfix"), "started").status_code == 202
    second = trigger(ctl, sequence="hotfix", tag="2")
    assert run_of(running, name="hotfix").state == SE.ABORTING
    third = trigger(ctl, sequence="hotfix", tag="3")
    superseded = run_of(second, name="hotfix")
    assert (superseded.state, superseded.superseded_by.context) == (SE.SUPERSEDED, third)
    assert "'cancel-in-progress' queue policy" in finished_event(second, name="hotfix")["data"]["message"]
    ctl.finish(current_task(running, name="hotfix"))
    assert run_of(third, name="hotfix").state == SE.STARTED

    assert ctl.control(third, "pause", project="queues").status_code == 200
    fourth = trigger(ctl, sequence="hotfix", tag="4")  # a paused holder with no task running ends at once
    assert run_of(third, name="hotfix").state == SE.ABORTED
    assert run_of(fourth, name="hotfix").state == SE.STARTED


def test_parallel_sequences_take_no_lane(ctl, queues):
    holder = trigger(ctl, tag="1")
    waiting = trigger(ctl, sequence="remediation")
    smokes = [trigger(ctl, sequence="smoke", tag=str(n)) for n in range(2)]
    for context in smokes:
        run = run_of(context, name="smoke")
        assert (run.state, run.holds_lane) == (SE.STARTED, False)
        assert current_task(context, name="smoke").name == "probe"
        assert execution(ctl, context)["queue"] == {"policy": "parallel", "description": "parallel: takes no lane",
                                                    "position": None, "blockedBy": None}
    assert execution(ctl, waiting)["queue"]["blockedBy"]["keptnContext"] == holder
    assert ctl.control(smokes[0], "pause", project="queues").status_code == 200
    assert ctl.control(smokes[0], "resume", project="queues").status_code == 200
    ctl.finish(current_task(smokes[0], name="smoke"))
    assert run_of(smokes[0], name="smoke").state == SE.FINISHED
    assert run_of(holder).state == SE.STARTED and run_of(waiting, name="remediation").state == SE.WAITING


def test_a_rollback_goes_before_the_backlog_and_newest_applies_after_it(ctl, queues):
    failing = trigger(ctl, stage="production", tag="1")
    older, newest = (trigger(ctl, stage="production", tag=str(n)) for n in (2, 3))
    ctl.finish(current_task(failing, stage="production"), result="fail")
    rollback = run_of(failing, stage="production", name="rollback")
    assert rollback.state == SE.STARTED  # the follow-up of the lane's holder, before the two waiting
    assert [run_of(c, stage="production").state for c in (older, newest)] == [SE.WAITING, SE.WAITING]
    ctl.finish(current_task(failing, stage="production", name="rollback"))
    assert run_of(newest, stage="production").state == SE.STARTED
    assert run_of(older, stage="production").state == SE.SUPERSEDED


@pytest.mark.parametrize("policy, message", [
    ("latest", "line 9: spec.stages[0].sequences[0].queue: 'latest' is not a queue policy: use one of fifo, "
               "newest, cancel-in-progress, parallel"),
    ("[fifo]", "line 9: spec.stages[0].sequences[0].queue: ['fifo'] is not a queue policy"),
])
def test_an_unknown_queue_policy_is_refused_with_its_line(admin_api, db, policy, message):
    shipyard = QUEUES_SHIPYARD.replace("queue: newest", f"queue: {policy}", 1)
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "queues", "shipyard": shipyard})
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_a_parallel_sequence_waits_for_a_freeze_only_and_starts_when_it_goes_whoever_holds_the_lane(ctl, queues):
    holder = trigger(ctl, tag="1")
    now = timezone.now()
    window = {"name": "freeze", "stages": ["dev"], "start": (now - timedelta(minutes=1)).isoformat(),
              "end": (now + timedelta(hours=1)).isoformat()}
    freeze_config.create_window(queues, window, actor="alice", source="api")
    queued = trigger(ctl, sequence="remediation")
    smoke = trigger(ctl, sequence="smoke")
    assert run_of(smoke, name="smoke").state == SE.WAITING  # frozen: not even a parallel one starts
    listed = execution(ctl, smoke)
    assert (listed["queue"]["position"], listed["queue"]["frozen"]["window"]) == (None, "freeze")  # not in the line
    assert listed["outcome"] == {"key": "waiting", "label": "Waiting (frozen)"}
    assert execution(ctl, queued)["queue"]["position"] == 1
    freeze_config.delete_window(queues, "freeze", actor="alice", source="api")
    started = run_of(smoke, name="smoke")
    assert (started.state, started.holds_lane) == (SE.STARTED, False)  # though the lane is still held
    assert current_task(smoke, name="smoke").name == "probe"
    assert run_of(holder).state == SE.STARTED and run_of(queued, name="remediation").state == SE.WAITING
