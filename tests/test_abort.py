"""The abort ladder: graceful keeps the lane, force releases it, kill terminates the task."""

import uuid

import pytest

from sequences.models import ControlAction, Event, SequenceExecution as SE, TaskExecution as TE
from tests.helpers import current_task, run_of



def test_keptns_abort_curl_works_verbatim(ctl, sockshop):
    context = ctl.trigger()
    response = ctl.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", '{\n  "state": "abort"\n}')
    assert response.status_code == 200
    # no executor had started the task: nothing runs, so even a graceful abort ends it at once
    assert response.json()["state"] == "aborted"
    assert current_task(context).state == TE.ABANDONED


def test_graceful_abort_keeps_the_lane_until_the_running_task_finishes(ctl, sockshop):
    first = ctl.trigger(tag="1")
    task = current_task(first)
    ctl.task_event(task, "started")
    second = ctl.trigger(tag="2")
    response = ctl.control(first, "abort")
    assert response.json()["state"] == "aborting"
    assert ctl.get(f"/api/controlPlane/v1/task/{task.triggered_id}").json()["cancelRequested"] is True
    assert run_of(second).state == SE.WAITING
    ctl.finish(task, result="pass")  # any result: the sequence ends aborted, nothing further is triggered
    run = run_of(first)
    assert (run.state, run.result, run.status) == (SE.ABORTED, "fail", "aborted")
    assert run.task_executions.count() == 1
    assert run_of(second).state == SE.STARTED


def test_force_abort_releases_the_lane_at_once_and_the_queued_sequence_starts(ctl, sockshop):
    first = ctl.trigger(tag="1")
    task = current_task(first)
    ctl.task_event(task, "started")
    second = ctl.trigger(tag="2")
    response = ctl.control(first, "abort", mode="force")
    assert response.status_code == 200 and response.json()["state"] == "aborted"
    assert TE.objects.get(pk=task.pk).state == TE.ABANDONED
    assert run_of(second).state == SE.STARTED
    assert current_task(second).state == TE.TRIGGERED


def test_a_force_abort_says_the_job_may_still_run_where_and_how_to_kill_it(ctl, sockshop, admin_user):
    from django.test import Client

    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="job-executor/host-a")
    answer = ctl.control(context, "abort", mode="force").json()
    words = (f"Its task 'deployment' was abandoned, but its job may still be running on job-executor/host-a: to "
             f"stop it, abort again with mode kill (bosun abort sequence --context {context} --kill, or the "
             f"Bridge's 'Kill its abandoned task').")
    assert answer["warning"] == words
    assert run_of(context).message.endswith(words)  # the API's executions and the Bridge show it too
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/bridge/project/sockshop/sequence/{context}").content.decode()
    assert "its job may still be running on job-executor/host-a" in page and "Kill its abandoned task" in page
    untouched = ctl.trigger(service="orders")  # no executor started its task: nothing may still run
    assert "warning" not in ctl.control(untouched, "abort", mode="force", ).json()


def test_late_events_after_force_are_stored_and_change_nothing(ctl, sockshop):
    first = ctl.trigger(tag="1")
    task = current_task(first)
    ctl.task_event(task, "started")
    second = ctl.trigger(tag="2")
    ctl.control(first, "abort", mode="force")
    late = ctl.task_event(task, "finished", result="pass", status="succeeded")
    assert late.status_code == 409
    assert "abandoned" in late.json()["message"]
    stored = Event.objects.get(event_id=late.json()["id"], type="sh.keptn.event.deployment.finished")
    assert stored.outcome == Event.REJECTED
    assert run_of(first).state == SE.ABORTED
    assert run_of(second).state == SE.STARTED
    assert not SE.objects.filter(stage="staging").exists()


def test_force_escalates_a_graceful_abort(ctl, sockshop):
    context = ctl.trigger()
    ctl.task_event(current_task(context), "started")
    assert ctl.control(context, "abort").json()["state"] == "aborting"
    again = ctl.control(context, "abort")
    assert again.status_code == 409 and again.json()["state"] == "aborting"
    assert ctl.control(context, "abort", mode="force").json()["state"] == "aborted"


def test_kill_marks_the_task_killing_until_an_executor_confirms(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="job-executor")
    assert ctl.control(context, "abort", mode="kill").json()["state"] == "aborted"
    requests = ctl.get(f"/api/controlPlane/v1/task/{task.triggered_id}").json()
    assert (requests["state"], requests["killRequested"]) == ("killing", True)
    assert ctl.post(f"/api/controlPlane/v1/task/{task.triggered_id}/killed").status_code == 200
    assert TE.objects.get(pk=task.pk).state == TE.KILLED
    assert ctl.post(f"/api/controlPlane/v1/task/{task.triggered_id}/killed").status_code == 409


def test_kill_after_force_stops_the_abandoned_task(ctl, sockshop):
    context = ctl.trigger()
    task = current_task(context)
    ctl.task_event(task, "started", source="job-executor")
    ctl.control(context, "abort", mode="force")
    assert ctl.control(context, "abort").status_code == 409  # graceful on a terminal sequence
    response = ctl.control(context, "abort", mode="kill")
    assert response.status_code == 200
    assert TE.objects.get(pk=task.pk).state == TE.KILLING
    assert ctl.control(context, "abort", mode="kill").status_code == 409  # nothing left to kill


def test_abort_of_a_waiting_sequence_removes_it_from_the_queue(ctl, sockshop):
    holder = ctl.trigger(tag="1")
    waiting = ctl.trigger(tag="2")
    behind = ctl.trigger(tag="3")
    assert ctl.control(waiting, "abort").json()["state"] == "aborted"
    assert ctl.executions(keptnContext=behind)["sequenceExecutions"][0]["queue"]["position"] == 1
    ctl.finish(current_task(holder), result="fail")
    assert run_of(behind).state == SE.STARTED
    assert run_of(waiting).task_executions.count() == 0


def test_an_aborted_sequence_reports_aborted_and_fail_and_chains_nothing(ctl, sockshop):
    context = ctl.trigger()
    for _ in range(3):
        ctl.finish(current_task(context))
    ctl.control(context, "pause")
    ctl.finish(current_task(context))
    ctl.control(context, "abort")  # paused with nothing running: aborted at once
    finished = Event.objects.get(type="sh.keptn.event.dev.delivery.finished", context=context)
    assert (finished.payload["data"]["status"], finished.payload["data"]["result"]) == ("aborted", "fail")
    assert not SE.objects.filter(stage="staging").exists()


def test_a_double_clicked_abort_with_one_idempotency_key_is_applied_once(ctl, sockshop):
    context = ctl.trigger()
    ctl.task_event(current_task(context), "started")
    key = str(uuid.uuid4())
    first = ctl.control(context, "abort", key=key)
    second = ctl.control(context, "abort", key=key)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert ControlAction.objects.filter(idempotency_key=key).count() == 1
    assert ControlAction.objects.filter(command="abort:graceful").count() == 1


@pytest.mark.parametrize("body, fragment", [
    ({"state": "stop"}, "state must be pause, resume or abort"),
    ({"state": "abort", "mode": "nuke"}, "mode must be graceful, force or kill"),
    ({"state": "pause", "mode": "force"}, "mode applies to abort only"),
    ({"mode": "force"}, "state: Field required"),
])
def test_a_bad_control_body_gets_400(ctl, sockshop, body, fragment):
    context = ctl.trigger()
    response = ctl.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert run_of(context).state == SE.STARTED


def test_unknown_project_or_context_gets_404(ctl, sockshop):
    assert ctl.control(str(uuid.uuid4()), "abort").status_code == 404
    assert ctl.control(str(uuid.uuid4()), "abort", project="nope").json()["message"] == "Project 'nope' does not exist."


def test_a_viewer_may_not_abort(viewer_api, ctl, sockshop):
    context = ctl.trigger()
    response = viewer_api.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", {"state": "abort"})
    assert response.status_code == 403
    assert run_of(context).state == SE.STARTED
