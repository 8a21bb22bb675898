"""A payload the lane cannot use fails its own sequence, never the queue behind it or another project's timers."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from sequences.engine import Engine
from sequences.models import Event
from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.rules.cloudevents import MAX_DEPTH
from tests.helpers import Snapshot, current_task, finish_all, nested, run_of, trigger_body


def test_deeply_nested_trigger_is_refused_with_the_limit_while_the_lane_is_busy(api, sockshop):
    holder = api.trigger(tag="1")
    before = Snapshot()
    response = api.post("/api/v1/event", trigger_body(deep=nested(700)))
    assert response.status_code == 400
    assert f"at most {MAX_DEPTH}" in response.json()["message"]
    assert before.unchanged()
    finish_all(api, holder)
    assert run_of(holder).state == SE.FINISHED


def test_nesting_at_the_limit_is_accepted(api, sockshop):
    body = trigger_body(deep=nested(MAX_DEPTH - 2))  # the event and its data are two levels
    assert api.post("/api/v1/event", body).status_code == 202
    body = trigger_body(deep=nested(MAX_DEPTH - 1))
    assert api.post("/api/v1/event", body).status_code == 400


def test_a_stored_deep_payload_in_the_queue_starts_when_the_lane_frees(api, sockshop):
    holder = api.trigger(tag="1")
    poisoned = api.trigger(tag="2")
    # a row accepted before intake had a depth limit
    SE.objects.filter(context=poisoned).update(input_data=trigger_body(deep=nested(700))["data"])
    for _ in range(3):
        api.finish(current_task(holder))
    assert api.task_event(current_task(holder), "finished", result="pass", status="succeeded").status_code == 202
    assert run_of(poisoned).state == SE.STARTED
    task = current_task(poisoned)
    assert task.state == TE.TRIGGERED
    triggered = Event.objects.get(event_id=task.triggered_id)
    assert "deep" in triggered.payload["data"]


def test_a_stored_payload_that_cannot_be_merged_fails_its_sequence_alone(ctl, sockshop):
    holder = ctl.trigger(tag="1")
    broken = ctl.trigger(tag="2")
    third = ctl.trigger(tag="3")
    SE.objects.filter(context=broken).update(input_data=["not", "an", "object"])
    # the holder is force-aborted: the lane goes past the broken sequence to the third
    assert ctl.control(holder, "abort", mode="force").status_code == 200
    run = run_of(broken)
    assert (run.state, run.result, run.status) == (SE.FINISHED, "fail", "errored")
    assert "could not be triggered" in run.message
    assert Event.objects.filter(context=broken, type="sh.keptn.event.dev.delivery.finished").exists()
    assert run_of(third).state == SE.STARTED
    assert current_task(third).state == TE.TRIGGERED


def test_one_failing_timer_does_not_stop_another_projects_timeout(ctl, sockshop, ops):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        bad = ctl.trigger(tag="1")  # sockshop: 10m start timeout
        good = ctl.trigger(project="ops", tag="1")  # ops: 3m start timeout
        SE.objects.filter(context=bad).update(tasks="corrupt")  # a row Bosun cannot read its limits from
        clock.shift(timedelta(minutes=10))
        assert Engine(repair_every=3600).step() is True
        assert run_of(good).state == SE.TIMED_OUT
        assert run_of(good).message == "No executor started task 'deployment' within 3m0s."
        bad_task = current_task(bad)
        assert bad_task.state == TE.TRIGGERED
        assert bad_task.engine_failures == 1 and "AttributeError" in bad_task.engine_error
        assert bad_task.start_deadline > timezone.now()  # set aside, retried later, not in a tight loop
        # the lane of the good project works again
        again = ctl.trigger(project="ops", tag="2")
        assert run_of(again).state == SE.STARTED


def test_a_stored_run_without_tasks_ends_failed_and_the_lane_moves_on(api, sockshop):
    from sequences.transitions import repair

    holder = api.trigger()
    waiting = api.trigger()
    SE.objects.filter(context=waiting).update(tasks=[])  # as a hand-written row would be
    finish_all(api, holder)
    run = run_of(waiting)
    assert (run.state, run.result, run.status) == (SE.FINISHED, "fail", "errored")
    assert run.message == "The sequence has no task to trigger: its stored tasks are empty."
    after = api.trigger()
    assert run_of(after).state == SE.STARTED
    assert repair.repair() == 0
