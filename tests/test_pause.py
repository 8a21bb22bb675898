"""Rules 4 and 5: pause holds the next task, resume releases it at once; lanes and queue places are kept."""

import pytest

from sequences.models import Event, SequenceExecution as SE
from tests.helpers import current_task, run_of



def test_pause_while_test_runs_then_resume(ctl, sockshop):
    context = ctl.trigger()
    ctl.finish(current_task(context))                    # deployment done, test triggered
    test = current_task(context)
    ctl.task_event(test, "started")
    response = ctl.control(context, "pause")
    assert response.status_code == 200
    assert response.json()["state"] == "paused"
    ctl.finish(test)                                     # the running task goes on and finishes
    assert current_task(context).name == "test"          # evaluation is not triggered
    assert not Event.objects.filter(type="sh.keptn.event.evaluation.triggered").exists()
    run = run_of(context)
    assert (run.state, run.state_before_pause, run.holds_lane) == (SE.PAUSED, SE.STARTED, True)
    response = ctl.control(context, "resume")
    assert response.status_code == 200 and response.json()["state"] == "started"
    evaluation = current_task(context)                   # triggered at once, in the resume request
    assert (evaluation.name, evaluation.state) == ("evaluation", "triggered")


def test_a_paused_sequence_keeps_its_lane(ctl, sockshop):
    first = ctl.trigger()
    ctl.control(first, "pause")
    ctl.finish(current_task(first))
    second = ctl.trigger()
    assert run_of(second).state == SE.WAITING
    assert ctl.executions(keptnContext=second)["sequenceExecutions"][0]["queue"]["blockedBy"]["keptnContext"] == first


def test_a_paused_last_task_holds_the_end_and_the_chain_until_resume(ctl, sockshop):
    context = ctl.trigger()
    for _ in range(3):
        ctl.finish(current_task(context))
    ctl.control(context, "pause")
    ctl.finish(current_task(context))
    assert run_of(context).state == SE.PAUSED
    assert not SE.objects.filter(stage="staging").exists()
    ctl.control(context, "resume")
    assert run_of(context).state == SE.FINISHED
    assert run_of(context, "staging").state == SE.STARTED


def test_a_failing_task_still_ends_a_paused_sequence(ctl, sockshop):
    context = ctl.trigger()
    ctl.control(context, "pause")
    ctl.finish(current_task(context), result="fail")
    run = run_of(context)
    assert (run.state, run.result, run.holds_lane) == (SE.FINISHED, "fail", False)


def test_a_paused_waiting_sequence_keeps_its_place_but_is_passed_over(ctl, sockshop):
    holder = ctl.trigger(tag="1")
    paused = ctl.trigger(tag="2")
    behind = ctl.trigger(tag="3")
    assert ctl.control(paused, "pause").json()["sequenceExecutions"][0]["stateBeforePause"] == "waiting"
    queue = ctl.executions(keptnContext=paused)["sequenceExecutions"][0]["queue"]
    assert queue["position"] == 1
    ctl.finish(current_task(holder), result="fail")      # the lane is released
    assert run_of(behind).state == SE.STARTED           # the first waiting one that is not paused
    assert run_of(paused).state == SE.PAUSED
    ctl.control(paused, "resume")
    assert run_of(paused).state == SE.WAITING
    assert ctl.executions(keptnContext=paused)["sequenceExecutions"][0]["queue"]["position"] == 1
    ctl.finish(current_task(behind), result="fail")
    assert run_of(paused).state == SE.STARTED


def test_resuming_a_waiting_sequence_in_a_free_lane_starts_it(ctl, sockshop):
    holder = ctl.trigger(tag="1")
    waiting = ctl.trigger(tag="2")
    ctl.control(waiting, "pause")
    ctl.finish(current_task(holder), result="fail")
    assert run_of(waiting).state == SE.PAUSED
    ctl.control(waiting, "resume")
    assert run_of(waiting).state == SE.STARTED
    assert current_task(waiting).name == "deployment"


def test_pause_one_stage_of_a_context(ctl, sockshop):
    context = ctl.trigger(service="carts")
    evaluation = ctl.trigger(sequence="evaluation", context=context)
    response = ctl.control(context, "pause", stage="dev")
    assert response.status_code == 200
    assert {run.name: run.state for run in SE.objects.filter(context=evaluation)} == {
        "delivery": SE.PAUSED, "evaluation": SE.PAUSED}
    assert ctl.control(context, "pause", stage="staging").status_code == 404


@pytest.mark.parametrize("command", ["resume"])
def test_resume_of_a_running_sequence_is_409_with_the_state(ctl, sockshop, command):
    context = ctl.trigger()
    response = ctl.control(context, command)
    assert response.status_code == 409
    assert response.json()["state"] == "started"
    assert "it is started" in response.json()["message"]


def test_pause_of_a_finished_sequence_is_409(ctl, sockshop):
    context = ctl.trigger()
    ctl.finish(current_task(context), result="fail")
    response = ctl.control(context, "pause")
    assert response.status_code == 409
    assert response.json()["state"] == "finished"


def test_suspend_running_asks_the_executor_to_suspend_and_resume_lifts_it(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started")
    ctl.control(context, "pause", suspendRunning=True)
    assert ctl.get(f"/api/controlPlane/v1/task/{task.triggered_id}").json()["suspendRequested"] is True
    ctl.control(context, "resume")
    assert ctl.get(f"/api/controlPlane/v1/task/{task.triggered_id}").json()["suspendRequested"] is False
