"""A task's retry policy: a failed, errored or timed-out attempt is tried again after its backoff; the
sequence fails only when the last attempt fails; earlier attempts keep their events; bad policies are refused."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sequences.configuration import create_project
from sequences.models import SequenceExecution as SE, TaskExecution as TE
from sequences.transitions import timeouts
from tests.helpers import one_stage_shipyard

RETRY = {"name": "deployment", "startTimeout": "1m", "retry": {"limit": 2, "backoff": "10s", "on": ["fail", "timedOut"]}}


@pytest.fixture
def retrying(db):
    return create_project("retrying", one_stage_shipyard("retrying", [RETRY, {"name": "test"}]),
                          services=["carts"])


def attempts(context):
    return list(TE.objects.filter(sequence_execution__context=context, name="deployment").order_by("id"))


def due(context):
    """Move the clock past the backoff: the engine triggers the waiting attempt."""
    later = timezone.now() + timedelta(seconds=11)
    assert timeouts.fire_due(later) == 1
    return attempts(context)[-1]


def test_a_failed_attempt_is_tried_again_after_its_backoff_and_the_sequence_goes_on(ctl, retrying):
    context = ctl.trigger(project="retrying")
    first = attempts(context)[0]
    ctl.finish(first, result="fail")
    waiting = attempts(context)
    assert [(t.attempt, t.state) for t in waiting] == [(1, TE.FINISHED), (2, TE.SCHEDULED)]
    assert SE.objects.get(context=context).state == SE.STARTED  # not failed: an attempt is left
    assert timeouts.fire_due(timezone.now() + timedelta(seconds=5)) == 0  # not before its backoff
    second = due(context)
    assert second.state == TE.TRIGGERED and second.triggered_id != first.triggered_id
    status = ctl.get("/api/controlPlane/v1/sequence-execution", project="retrying",
                     keptnContext=context).json()["sequenceExecutions"][0]["status"]
    assert [(t["triggeredID"], t["attempt"], t["result"]) for t in status["previousTasks"]] == [
        (first.triggered_id, 1, "fail")]
    assert (status["currentTask"]["triggeredID"], status["currentTask"]["attempt"]) == (second.triggered_id, 2)
    ctl.finish(second, result="pass")
    run = SE.objects.get(context=context)
    assert run.state == SE.STARTED and run.task_executions.order_by("-id").first().name == "test"
    events = ctl.get("/api/v1/event", keptnContext=context).json()["events"]
    triggered = [e["id"] for e in events if e["type"] == "sh.keptn.event.deployment.triggered"]
    assert triggered == [first.triggered_id, second.triggered_id]  # each attempt has its own


def test_the_sequence_fails_when_its_last_attempt_fails(ctl, retrying):
    context = ctl.trigger(project="retrying")
    ctl.finish(attempts(context)[0], result="fail")
    ctl.finish(due(context), result="fail")
    ctl.finish(due(context), result="fail")
    run = SE.objects.get(context=context)
    assert (run.state, run.result) == (SE.FINISHED, "fail")
    assert [t.attempt for t in attempts(context)] == [1, 2, 3]


def test_a_timed_out_attempt_is_tried_again_and_an_errored_one_is_not_when_on_leaves_it_out(ctl, retrying):
    context = ctl.trigger(project="retrying")
    # nobody started it: it times out, and (the clock being past the backoff too) the next attempt is triggered
    assert timeouts.fire_due(timezone.now() + timedelta(minutes=2)) == 2
    assert [(t.attempt, t.state) for t in attempts(context)] == [(1, TE.TIMED_OUT), (2, TE.TRIGGERED)]
    second = attempts(context)[-1]
    ctl.task_event(second, "finished", result="fail", status="errored")  # `on` has fail and timedOut, not errored
    run = SE.objects.get(context=context)
    assert (run.state, run.result, run.status) == (SE.FINISHED, "fail", "errored")


def test_a_task_killed_or_finished_by_a_person_is_not_tried_again(ctl, retrying):
    context = ctl.trigger(project="retrying")
    assert ctl.task_command(attempts(context)[0], "kill", reason="wrong image").status_code == 200
    assert len(attempts(context)) == 1
    assert SE.objects.get(context=context).state == SE.FINISHED


def test_a_paused_sequence_retries_when_it_is_resumed(ctl, retrying):
    context = ctl.trigger(project="retrying")
    ctl.control(context, "pause", project="retrying")
    ctl.finish(attempts(context)[0], result="fail")
    assert len(attempts(context)) == 1 and SE.objects.get(context=context).state == SE.PAUSED
    ctl.control(context, "resume", project="retrying")
    assert [(t.attempt, t.state) for t in attempts(context)] == [(1, TE.FINISHED), (2, TE.SCHEDULED)]


def test_the_page_shows_each_attempt(ctl, retrying, admin_user):
    context = ctl.trigger(project="retrying")
    ctl.finish(attempts(context)[0], result="fail")
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get(f"/bridge/project/retrying/sequence/{context}").content.decode()
    assert '<span class="muted attempt">attempt 1 of 3</span>' in page
    assert '<span class="muted attempt">attempt 2 of 3</span>' in page
    assert "is triggered in" in page  # the backoff's countdown
    due(context)
    page = browser.get(f"/bridge/project/retrying/sequence/{context}").content.decode()
    assert '<span class="gantt-label">dev · deployment (attempt 2)</span>' in page  # the timeline tells them apart


@pytest.mark.parametrize("retry,error", [
    ("{limit: 0}", "retry.limit: must be a whole number of retries from 1 to 10, not 0"),
    ("{limit: lots}", "retry.limit: must be a whole number of retries from 1 to 10, not 'lots'"),
    ("{limit: 2, backoff: soon}", "retry.backoff: 'soon' is not a duration; use Go syntax such as 90s, 10m or 1h30m"),
    ("{limit: 2, on: [fial]}", "retry.on[0]: 'fial' is not one of fail, errored, timedOut (did you mean 'fail'?)"),
])
def test_a_bad_retry_policy_is_refused_with_its_line_and_nothing_is_stored(admin_api, retry, error):
    shipyard = one_stage_shipyard("bad", [{"name": "deployment"}]).replace(
        '{"name": "deployment"}', '{"name": "deployment", "retry": ' + retry + "}")
    answer = admin_api.post("/api/controlPlane/v1/project", {"name": "bad", "shipyard": shipyard})
    assert answer.status_code == 400
    assert answer.json()["message"] == f"The shipyard is not valid: line 10: spec.stages[0].sequences[0].tasks[0].{error}"
    assert admin_api.get("/api/controlPlane/v1/project/bad").status_code == 404
