"""Batches of events: capped, applied in one transaction, one exact answer per event."""

import json

from sequences.models import Event
from sequences.models import TaskExecution as TE
from tests.helpers import Snapshot, current_task, task_started, trigger_body


def test_a_batch_over_the_event_cap_is_refused_whole(api, sockshop):
    context = api.trigger()
    before = Snapshot()
    events = [task_started(current_task(context), source=f"s{i}") for i in range(1001)]
    response = api.post("/api/v1/event", events, content_type="application/cloudevents-batch+json")
    assert response.status_code == 413
    assert "at most 1000" in response.json()["message"]
    assert before.unchanged()


def test_a_batch_over_the_byte_cap_is_refused_whole(api, sockshop):
    before = Snapshot()
    body = json.dumps([trigger_body(pad="x" * 60_000) for _ in range(150)])  # about 9 MB
    response = api.post("/api/v1/event", body, content_type="application/cloudevents-batch+json")
    assert response.status_code == 413
    assert before.unchanged()


def test_a_big_batch_is_applied_in_one_transaction_with_one_exact_answer_per_event(api, sockshop):
    context = api.trigger()
    task = current_task(context)
    events = [task_started(task, source=f"s{i}", id=f"e-{i}") for i in range(450)]
    events[199] = {"type": "nonsense"}
    events[200] = task_started(task, source="s1", id="e-1")  # a duplicate of an event of the same batch
    events[401] = task_started(task, source="late", time="2024-02-30T00:00:00Z")
    response = api.post("/api/v1/event", events, content_type="application/cloudevents-batch+json")
    assert response.status_code == 207
    answers = response.json()
    assert len(answers) == 450
    assert answers[0]["status"] == 202 and answers[449]["status"] == 202
    assert answers[199]["status"] == 400
    assert answers[200]["status"] == 200 and answers[200]["duplicate"] is True
    assert answers[401]["status"] == 400 and "2024-02-30" in answers[401]["message"]
    assert len(TE.objects.get(pk=task.pk).executors) == 447


def test_a_batch_that_fails_half_way_leaves_nothing_behind(api, sockshop, monkeypatch):
    """One transaction: a batch the server cannot finish is not half applied."""
    from sequences.transitions import task_moves as tasks

    context = api.trigger()
    task = current_task(context)
    before = Snapshot()
    started = tasks.executor_started

    def breaks_on_the_third(task, sequence, source, now, also=()):
        if source == "s2":
            raise RuntimeError("the disk is full")
        return started(task, sequence, source, now, also)

    monkeypatch.setattr(tasks, "executor_started", breaks_on_the_third)
    events = [task_started(task, source=f"s{i}", id=f"half-{i}") for i in range(5)]
    response = api.post("/api/v1/event", events, content_type="application/cloudevents-batch+json")
    assert response.status_code == 500
    assert before.unchanged()
    assert not Event.objects.filter(event_id__startswith="half-").exists()
