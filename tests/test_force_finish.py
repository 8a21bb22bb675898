"""An operator finishes or kills a task; what executors send later is fenced off."""

import json

import pytest

from sequences.models import ControlAction, Event, SequenceExecution as SE, TaskExecution as TE
from tests.helpers import current_task, run_of



def test_a_fake_finished_event_fails_the_task_and_the_sequence(ctl, sockshop):
    """Copy the task's .started event, make it .finished with status errored and result fail, POST it."""
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="jmeter-service")
    started = Event.objects.get(type="sh.keptn.event.deployment.started", context=context).payload
    fake = json.loads(json.dumps(started))
    fake["type"] = fake["type"].replace(".started", ".finished")
    fake["data"]["status"] = "errored"
    fake["data"]["result"] = "fail"
    response = ctl.post("/api/v1/event", fake)
    assert response.status_code == 202, response.json()
    done = TE.objects.get(pk=task.pk)
    assert (done.state, done.result, done.status) == (TE.FINISHED, "fail", "errored")
    run = run_of(context)
    assert (run.state, run.result, run.status) == (SE.FINISHED, "fail", "errored")


def test_force_finish_with_a_result_goes_on_and_fences_off_the_executor(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="helm")
    response = ctl.task_command(task, "finish", result="pass", status="succeeded", reason="deployed by hand")
    assert response.status_code == 200
    assert response.json()["state"] == "finished"
    done = TE.objects.get(pk=task.pk)
    assert done.finished_by == "operator (token control)"
    assert "deployed by hand" in done.message
    assert current_task(context).name == "test"
    late = ctl.task_event(task, "finished", source="helm", result="fail")
    assert late.status_code == 409
    assert "finished by operator" in late.json()["message"]
    assert current_task(context).name == "test"


def test_force_finish_fail_ends_the_sequence_failed(ctl, sockshop):
    context = ctl.trigger()
    ctl.task_command(current_task(context), "finish", result="fail", status="errored", reason="stuck")
    assert (run_of(context).state, run_of(context).result) == (SE.FINISHED, "fail")


@pytest.mark.parametrize("body, fragment", [
    ({"result": "pass", "status": "succeeded"}, "reason: Field required"),
    ({"result": "pass", "status": "succeeded", "reason": "  "}, "reason is required"),
    ({"result": "great", "status": "succeeded", "reason": "x"}, "result must be pass, warning or fail"),
    ({"result": "pass", "status": "fine", "reason": "x"}, "status must be one of"),
])
def test_force_finish_needs_a_valid_result_status_and_a_reason(ctl, sockshop, body, fragment):
    context = ctl.trigger()
    response = ctl.task_command(current_task(context), "finish", **body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert current_task(context).state == TE.TRIGGERED


def test_force_finish_of_a_finished_task_is_409(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.finish(task)
    response = ctl.task_command(task, "finish", result="pass", status="succeeded", reason="again")
    assert response.status_code == 409
    assert response.json()["state"] == "finished"


def test_force_finish_of_an_unknown_task_is_404(ctl, sockshop):
    response = ctl.post("/api/controlPlane/v1/task/nope/finish", {"result": "pass", "reason": "x"})
    assert response.status_code == 404


def test_kill_a_task_ends_it_killed_and_the_sequence_failed(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="job-executor")
    response = ctl.task_command(task, "kill", reason="runaway")
    assert response.status_code == 200
    assert response.json()["state"] == "killing"
    assert run_of(context).state == SE.FINISHED and run_of(context).result == "fail"
    assert ctl.task_event(task, "finished", source="job-executor").status_code == 409
    audit = ControlAction.objects.get(command="kill")
    assert (audit.reason, audit.state_before, audit.state_after) == ("runaway", "started", "killing")
