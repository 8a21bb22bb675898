"""POST /api/v1/event: what clients may send, what they get back, and what is stored."""

import json
import uuid

import pytest

from sequences.models import Event, SequenceExecution
from tests.helpers import current_task, run_of



def event(type_, **fields):
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "test", "type": type_, **fields}


def dev_delivery(**data):
    return event("sh.keptn.event.dev.delivery.triggered",
                 data={"project": "sockshop", "stage": "dev", "service": "carts", **data})


def test_a_sequence_trigger_is_accepted_with_its_context(api, sockshop):
    response = api.post("/api/v1/event", dev_delivery())
    assert response.status_code == 202
    context = response.json()["keptnContext"]
    assert str(uuid.UUID(context)) == context
    assert run_of(context).state == SequenceExecution.STARTED


def test_a_given_context_is_kept(api, sockshop):
    context = str(uuid.uuid4())
    response = api.post("/api/v1/event", {**dev_delivery(), "shkeptncontext": context})
    assert response.json()["keptnContext"] == context


@pytest.mark.parametrize("type_, reason", [
    ("sh.keptn.event.dev.delivery.finished", "Clients may only send '.triggered' for a sequence"),
    ("sh.keptn.event.dev.delivery.started", "Clients may only send '.triggered' for a sequence"),
    ("sh.keptn.event.deployment.triggered", "Bosun triggers tasks itself"),
    ("sh.keptn.event.deployment.exploded", "Unknown event kind 'exploded'"),
    ("com.example.build.done", "is not a Keptn event type"),
    ("sh.keptn.event.a.b.c.triggered", "is not a Keptn event type"),
])
def test_event_types_clients_may_not_send_are_refused_with_the_reason(api, sockshop, type_, reason):
    response = api.post("/api/v1/event", event(type_, triggeredid="x", data={"project": "sockshop", "stage": "dev",
                                                                            "service": "carts"}))
    assert response.status_code == 400
    assert reason in response.json()["message"]
    assert response.json()["code"] == 400
    assert not Event.objects.exists()


@pytest.mark.parametrize("body, reason", [
    ("not json", "not valid JSON"),
    ("[]", "Send one event as a JSON object"),
    ('{"type": "sh.keptn.event.dev.delivery.triggered", "data": {"stage": "dev", "service": "carts"}}',
     "needs data.project"),
    ('{"type": "sh.keptn.event.dev.delivery.triggered", "data": "x"}', "'data' must be a JSON object"),
    ('{"type": "sh.keptn.event.dev.delivery.triggered", "data": {"project": "sockshop", "stage": "prod", '
     '"service": "carts"}}', "does not match the stage 'dev'"),
    ('{"type": "sh.keptn.event.test.finished", "data": {}}', "needs 'triggeredid'"),
    ('{"type": "sh.keptn.event.dev.delivery.triggered", "data": {"project": "sockshop", "stage": "dev", '
     '"service": "carts", "result": "great"}}', "data.result must be one of pass, warning, fail"),
    ('{"type": "sh.keptn.event.dev.delivery.triggered", "shkeptncontext": "ctx-1", "data": {"project": "sockshop", '
     '"stage": "dev", "service": "carts"}}', "is not a UUID"),
    ('{"data": {}}', "has no 'type'"),
])
def test_malformed_events_get_400_and_change_nothing(api, sockshop, body, reason):
    response = api.post("/api/v1/event", body)
    assert response.status_code == 400, response.json()
    assert reason in response.json()["message"]
    assert not SequenceExecution.objects.exists()


@pytest.mark.parametrize("data, code, reason", [
    ({"project": "nope", "stage": "dev", "service": "carts"}, 404, "Project 'nope' does not exist"),
    ({"project": "sockshop", "stage": "dev", "service": "payment"}, 404, "has no service 'payment'"),
])
def test_triggers_for_unknown_things_say_what_is_missing(api, sockshop, data, code, reason):
    response = api.post("/api/v1/event", event("sh.keptn.event.dev.delivery.triggered", data=data))
    assert response.status_code == code
    assert reason in response.json()["message"]


def test_an_unknown_stage_or_sequence_is_accepted_and_ends_at_once_naming_what_exists(api, sockshop):
    """As Keptn does: 202 with the context, and a .finished (errored, fail) that a waiting script sees."""
    for stage, name, reason in (("qa", "delivery", "Project 'sockshop' has no stage 'qa'; its stages are dev, "
                                                   "staging, production."),
                                ("dev", "build", "Stage 'dev' has no sequence 'build'; it has delivery, evaluation")):
        response = api.post("/api/v1/event", event(f"sh.keptn.event.{stage}.{name}.triggered",
                                                   data={"project": "sockshop", "stage": stage, "service": "carts"}))
        assert response.status_code == 202
        context = response.json()["keptnContext"]
        finished = Event.objects.get(context=context, type=f"sh.keptn.event.{stage}.{name}.finished")
        data = finished.payload["data"]
        assert (data["result"], data["status"]) == ("fail", "errored") and reason in data["message"]
        log = api.get("/api/v1/event", keptnContext=context).json()["events"]
        assert [e["type"] for e in log] == [f"sh.keptn.event.{stage}.{name}.triggered",
                                            f"sh.keptn.event.{stage}.{name}.finished"]
        run = SequenceExecution.objects.get(context=context)  # listed, as Keptn lists it: finished, errored
        assert (run.stage, run.name, run.state, run.result, run.status, run.holds_lane, run.tasks) == (
            stage, name, "finished", "fail", "errored", False, [])
        assert reason in run.message
    assert api.trigger() and SequenceExecution.objects.get(stage="dev", name="delivery").state == "started"


def test_an_executors_odd_result_and_status_are_stored_and_count_as_failure(api, sockshop):
    """Be liberal with executors: the lane must move on whatever they send."""
    first = api.trigger(tag="1")
    second = api.trigger(tag="2")
    task = current_task(first)
    response = api.task_event(task, "finished", result="failed", status="done")
    assert response.status_code == 202
    stored = Event.objects.get(type="sh.keptn.event.deployment.finished", context=first)
    assert (stored.payload["data"]["result"], stored.payload["data"]["status"]) == ("failed", "done")
    assert "result 'failed' is not pass, warning or fail: counted as fail" in stored.note
    assert "status 'done' is not one Bosun knows: counted as errored" in stored.note
    run = run_of(first)
    assert (run.state, run.result, run.status) == (SequenceExecution.FINISHED, "fail", "errored")
    assert run_of(second).state == SequenceExecution.STARTED  # the lane moved on
    emitted = Event.objects.get(type="sh.keptn.event.dev.delivery.finished", context=first).payload["data"]
    assert (emitted["result"], emitted["status"]) == ("fail", "errored")  # strict in what Bosun emits


def test_lists_concatenate_across_tasks_newest_first_and_gitcommitid_travels(api, sockshop):
    response = api.post("/api/v1/event", {**event("sh.keptn.event.dev.delivery.triggered", data={
        "project": "sockshop", "stage": "dev", "service": "carts", "uris": ["a"]}), "gitcommitid": "abc123"})
    context = response.json()["keptnContext"]
    api.finish(current_task(context), uris=["b"])
    triggered = Event.objects.get(type="sh.keptn.event.test.triggered", context=context).payload
    assert triggered["data"]["uris"] == ["b", "a"]
    assert triggered["gitcommitid"] == "abc123"
    assert all(e.payload.get("time") for e in Event.objects.filter(context=context))


def test_an_event_over_64_kib_is_refused_with_413(api, sockshop):
    big = dev_delivery(blob="x" * (64 * 1024))
    response = api.post("/api/v1/event", big)
    assert response.status_code == 413
    assert "at most 65536 bytes" in response.json()["message"]
    assert not Event.objects.exists()


def test_an_event_just_under_64_kib_is_accepted(api, sockshop):
    body = dev_delivery(blob="")
    body["data"]["blob"] = "x" * (64 * 1024 - len(json.dumps(body)) - 200)
    assert api.post("/api/v1/event", body).status_code == 202


def test_a_repeated_event_id_is_applied_once_and_the_answer_says_so(api, sockshop):
    body = dev_delivery()
    first = api.post("/api/v1/event", body)
    second = api.post("/api/v1/event", body)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["keptnContext"] == first.json()["keptnContext"]
    assert SequenceExecution.objects.count() == 1
    assert Event.objects.filter(event_id=body["id"]).count() == 1


def test_a_trigger_with_its_own_context_sent_again_while_it_runs_is_a_duplicate(api, sockshop):
    body = dev_delivery()
    body["shkeptncontext"] = "0c3a1e56-3a8e-4a5e-9d57-5f0e8d1b7c11"
    assert api.post("/api/v1/event", body).status_code == 202
    again = api.post("/api/v1/event", body)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    other = {**body, "id": "another-id"}  # a new event for the same running sequence is refused as before
    refused = api.post("/api/v1/event", other)
    assert refused.status_code == 409 and "already runs" in refused.json()["message"]
    assert SequenceExecution.objects.count() == 1
    assert Event.objects.filter(event_id=body["id"]).count() == 1


def test_a_refused_event_sent_again_is_answered_as_the_first_time_and_stored_once(api, sockshop):
    body = event("sh.keptn.event.deployment.finished", triggeredid="no-such-task", data={"result": "pass"})
    first = api.post("/api/v1/event", body)
    again = api.post("/api/v1/event", body)
    assert (first.status_code, again.status_code) == (409, 409)
    assert again.json()["message"] == f"Event {body['id']} was received before (rejected); it is not applied twice."
    assert Event.objects.filter(event_id=body["id"]).count() == 1


def test_a_repeated_finished_event_finishes_the_task_once(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    body = event("sh.keptn.event.deployment.finished", triggeredid=task.triggered_id, shkeptncontext=context,
                 data={"project": "sockshop", "result": "pass", "status": "succeeded"})
    assert api.post("/api/v1/event", body).status_code == 202
    assert api.post("/api/v1/event", body).json()["duplicate"] is True
    assert [t.name for t in run_of(context).task_executions.all()] == ["deployment", "test"]


def test_an_unknown_triggeredid_is_stored_answered_409_and_changes_nothing(api, sockshop):
    context = api.trigger()
    body = event("sh.keptn.event.deployment.finished", triggeredid="no-such-task", shkeptncontext=context,
                 data={"result": "pass"})
    response = api.post("/api/v1/event", body)
    assert response.status_code == 409
    assert "No task was triggered with id no-such-task" in response.json()["message"]
    stored = Event.objects.get(event_id=body["id"])
    assert stored.outcome == Event.REJECTED
    assert current_task(context).name == "deployment"


def test_an_event_for_a_task_that_already_finished_gets_409(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    api.finish(task)
    late = api.task_event(task, "finished", source="another", result="fail")
    assert late.status_code == 409
    assert "has already finished" in late.json()["message"]
    assert run_of(context).state == SequenceExecution.STARTED
    assert current_task(context).name == "test"


def test_a_task_payload_merges_input_earlier_results_and_its_properties(api, sockshop):
    context = api.trigger(labels={"buildId": "42"})
    api.finish(current_task(context), deployment={"deploymentURIsLocal": ["http://carts.dev"]},
               configurationChange={"values": {"replicas": 2}})
    test_task = current_task(context)
    triggered = Event.objects.get(event_id=test_task.triggered_id).payload
    assert triggered["type"] == "sh.keptn.event.test.triggered"
    assert triggered["shkeptncontext"] == context
    data = triggered["data"]
    assert data["project"] == "sockshop" and data["stage"] == "dev" and data["service"] == "carts"
    assert data["labels"] == {"buildId": "42"}
    assert data["configurationChange"]["values"] == {"image": "docker.io/keptnexamples/carts:0.11.1", "replicas": 2}
    assert data["deployment"] == {"deploymentURIsLocal": ["http://carts.dev"]}
    assert data["test"] == {"teststrategy": "functional"}
    assert (data["result"], data["status"]) == ("pass", "succeeded")


def test_a_batch_is_applied_in_order_with_one_answer_per_event(api, sockshop):
    batch = [dev_delivery(), {"type": "bogus"}, event("sh.keptn.event.dev.delivery.triggered",
                                                      data={"project": "sockshop", "stage": "dev", "service": "orders"})]
    response = api.post("/api/v1/event", json.dumps(batch), content_type="application/cloudevents-batch+json")
    assert response.status_code == 207
    answers = response.json()
    assert [a["status"] for a in answers] == [202, 400, 202]
    assert "is not a Keptn event type" in answers[1]["message"]
    assert SequenceExecution.objects.count() == 2


def test_the_event_log_reads_oldest_first_with_paging(api, sockshop):
    context = api.trigger()
    api.finish(current_task(context))
    page = api.get("/api/v1/event", keptnContext=context, pageSize=2).json()
    assert page["totalCount"] == 4  # delivery.triggered, deployment.triggered, .finished, test.triggered
    assert [e["type"] for e in page["events"]] == ["sh.keptn.event.dev.delivery.triggered",
                                                    "sh.keptn.event.deployment.triggered"]
    rest = api.get("/api/v1/event", keptnContext=context, nextPageKey=page["nextPageKey"]).json()
    assert [e["type"] for e in rest["events"]] == ["sh.keptn.event.deployment.finished",
                                                    "sh.keptn.event.test.triggered"]
    assert rest["nextPageKey"] == ""


def test_a_batch_that_is_all_accepted_answers_202(api, sockshop):
    response = api.post("/api/v1/event", json.dumps([{**dev_delivery(), "id": ""}, dev_delivery()]),
                        content_type="application/cloudevents-batch+json")
    assert response.status_code == 202
    assert [a["status"] for a in response.json()] == [202, 202]


def test_a_batch_that_starts_and_finishes_the_same_task_and_repeats_an_event_applies_each_once(api, sockshop):
    """A chunk looks its events and tasks up once; what it changes itself is looked up again."""
    import json
    import uuid

    from tests.helpers import current_task, run_of

    context = api.trigger(tag="1")
    task = current_task(context)

    def event(kind, source, id_=None):
        return {"specversion": "1.0", "id": id_ or str(uuid.uuid4()), "source": source, "shkeptncontext": context,
                "triggeredid": task.triggered_id, "type": f"sh.keptn.event.{task.name}.{kind}",
                "data": {"result": "pass", "status": "succeeded"}}
    again = str(uuid.uuid4())
    batch = [event("started", "a"), event("started", "b"), event("finished", "a", again), event("finished", "a", again),
             event("finished", "b")]
    response = api.post("/api/v1/event", json.dumps(batch), content_type="application/cloudevents-batch+json")
    answers = response.json()
    assert [a["status"] for a in answers] == [202, 202, 202, 200, 202]
    assert answers[3]["duplicate"] is True
    task.refresh_from_db()
    assert task.state == "finished"
    assert current_task(context).name == "test"  # handed off once, after both executors finished
    assert run_of(context).task_executions.count() == 2


def test_the_events_of_one_arrival_are_logged_in_the_order_they_happened(api, sockshop):
    """A last task's .finished, the sequence's .finished, the chained trigger of the next stage and its first
    task's .triggered are written together, at the end of the arrival, in that order."""
    context = api.trigger()
    while (task := current_task(context)).name != "release":
        api.finish(task)
    last = Event.objects.order_by("-id").first().id
    api.finish(current_task(context))
    logged = list(Event.objects.filter(id__gt=last).order_by("id").values_list("type", "outcome"))
    assert logged == [("sh.keptn.event.release.finished", "applied"),
                      ("sh.keptn.event.dev.delivery.finished", "emitted"),
                      ("sh.keptn.event.staging.delivery.triggered", "emitted"),
                      ("sh.keptn.event.deployment.triggered", "emitted")]
