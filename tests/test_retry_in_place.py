"""Retry from a task: a sequence that failed or timed out at a task goes on from there with a new attempt of
that task, its lane taken again (or it waits for it); earlier attempts keep their events; only the task it
ended at is retried, and only once it has ended."""

import pytest
from django.utils import timezone

from sequences.models import ControlAction, Event, SequenceExecution as SE, TaskExecution as TE
from sequences.transitions import timeouts
from tests.helpers import current_task


def dev(context):
    return SE.objects.get(context=context, stage="dev")


def retry(ctl, task, **body):
    return ctl.task_command(task, "retry", **body)


def failed_at_test(ctl, tag="1.0"):
    context = ctl.trigger(tag=tag)
    ctl.finish(current_task(context))  # deployment passes
    test = current_task(context)
    ctl.finish(test, result="fail")
    assert dev(context).state == SE.FINISHED
    return context, TE.objects.get(pk=test.pk)


def test_a_failed_sequence_goes_on_from_the_task_it_failed_at(ctl, sockshop):
    context, failed = failed_at_test(ctl)
    answer = retry(ctl, failed, reason="the test database was down")
    assert answer.status_code == 200, answer.json()
    again = current_task(context)
    assert (again.name, again.attempt, again.state, again.index) == ("test", 2, TE.TRIGGERED, failed.index)
    assert answer.json() == {
        "keptnContext": context, "stage": "dev", "task": "test", "retryOf": failed.triggered_id,
        "sequenceState": "started", "previousState": "finished", "triggeredId": again.triggered_id, "attempt": 2,
        "state": "triggered", "message": "Retried from task 'test' by operator (token control): the test "
                                         "database was down"}
    run = dev(context)
    assert (run.state, run.result, run.ended_at, run.holds_lane) == (SE.STARTED, "", None, True)
    first = TE.objects.get(pk=failed.pk)
    assert (first.state, first.result) == (TE.FINISHED, "fail")  # the failed attempt keeps what it had
    assert Event.objects.filter(triggered_id=failed.triggered_id).exists()
    ctl.finish(again)
    assert current_task(context).name == "evaluation"  # it goes on from there
    row = ControlAction.objects.get(command="retry")
    assert (row.reason, row.state_before, row.state_after, row.task_execution_id) == (
        "the test database was down", "finished", "started", failed.id)


def test_a_timed_out_sequence_is_retried_from_its_task(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    TE.objects.filter(pk=task.pk).update(start_deadline=timezone.now())
    timeouts.fire_due(timezone.now())
    assert dev(context).state == SE.TIMED_OUT
    assert retry(ctl, TE.objects.get(pk=task.pk)).status_code == 200
    assert (current_task(context).name, current_task(context).attempt) == ("deployment", 2)


def test_while_another_context_holds_the_lane_the_retry_waits_for_it(ctl, sockshop):
    context, failed = failed_at_test(ctl)
    holder = ctl.trigger(tag="2.0")
    answer = retry(ctl, failed)
    assert answer.status_code == 200
    assert (answer.json()["sequenceState"], answer.json()["triggeredId"]) == ("waiting", None)
    assert dev(context).state == SE.WAITING and dev(context).task_executions.count() == 2
    ctl.control(holder, "abort", mode="force", stage="dev")
    again = current_task(context)
    assert (dev(context).state, again.name, again.attempt) == (SE.STARTED, "test", 2)


@pytest.mark.parametrize("which", ["an earlier task", "a sequence that passed", "a running sequence",
                                   "a sequence that was re-run"])
def test_only_the_task_an_ended_sequence_failed_at_is_retried(ctl, sockshop, which):
    if which == "an earlier task":
        context, _ = failed_at_test(ctl)
        task = dev(context).task_executions.get(name="deployment")
    elif which == "a sequence that passed":
        context = ctl.trigger()
        for _ in range(4):
            ctl.finish(current_task(context))
        task = dev(context).task_executions.get(name="release")
    elif which == "a running sequence":
        context = ctl.trigger()
        task = current_task(context)
    else:
        context, task = failed_at_test(ctl)
        assert ctl.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/retrigger",
                        {"stage": "dev", "newContext": True}).status_code == 201
    before = (dev(context).state, dev(context).task_executions.count())
    answer = retry(ctl, task)
    assert answer.status_code == 409, answer.json()
    why = {"an earlier task": f"its sequence failed at task 'test' ({current_task(context).triggered_id}), not here",
           "a sequence that passed": "its sequence is finished; only one that failed or timed out is retried",
           "a running sequence": "its sequence is started; only one that failed or timed out is retried",
           "a sequence that was re-run": f"its sequence was re-run ({SE.objects.latest('id').context}); go on there"}
    assert answer.json()["message"] == f"Task '{task.name}' cannot be retried: {why[which]}."
    assert (dev(context).state, dev(context).task_executions.count()) == before


def test_a_viewer_may_not_retry_and_a_repeat_with_the_same_key_is_answered_once(ctl, viewer_api, sockshop):
    context, failed = failed_at_test(ctl)
    refused = viewer_api.post(f"/api/controlPlane/v1/task/{failed.triggered_id}/retry", {})
    assert refused.status_code == 403 and dev(context).state == SE.FINISHED
    first = retry(ctl, failed, key="retry-1")
    second = retry(ctl, failed, key="retry-1")
    assert first.json() == second.json()
    assert dev(context).task_executions.filter(name="test").count() == 2
    assert retry(ctl, failed).status_code == 409  # it runs again already


def test_a_task_being_killed_is_retried_only_once_the_kill_is_confirmed(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="job-executor")
    assert ctl.task_command(task, "kill").status_code == 200
    assert (dev(context).state, dev(context).result, TE.objects.get(pk=task.pk).state) == (
        SE.FINISHED, "fail", TE.KILLING)
    early = retry(ctl, task)
    assert early.status_code == 409
    assert early.json()["message"] == ("Task 'deployment' cannot be retried yet: its processes are being killed. "
                                       "Retry it once an executor confirms the kill, or once it is taken as killed.")
    assert dev(context).task_executions.count() == 1
    assert ctl.post(f"/api/controlPlane/v1/task/{task.triggered_id}/killed").status_code == 200
    assert retry(ctl, task).status_code == 200
    assert (current_task(context).name, current_task(context).attempt) == ("deployment", 2)
