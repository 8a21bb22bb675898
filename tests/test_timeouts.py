"""Start, total and heartbeat timeouts; triggeredAfter delays; the engine fires them on time."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from sequences.engine import Engine
from sequences.models import ControlAction, Event
from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.transitions import timeouts
from tests.helpers import current_task, run_of


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def step(clock, **delta):
    clock.shift(timedelta(**delta))
    return Engine(repair_every=3600).step()


def test_no_executor_starts_a_task_within_its_start_timeout(ctl, ops, clock):
    context = ctl.trigger(project="ops")
    assert step(clock, minutes=2, seconds=59) is False
    assert step(clock, seconds=1) is True
    run = run_of(context)
    assert (run.state, run.result, run.status, run.holds_lane) == (SE.TIMED_OUT, "fail", "errored", False)
    assert run.message == "No executor started task 'deployment' within 3m0s."
    assert current_task(context).state == TE.TIMED_OUT
    finished = Event.objects.get(type="sh.keptn.event.dev.delivery.finished", context=context)
    assert finished.payload["data"]["result"] == "fail"
    assert not SE.objects.filter(stage="production").exists()
    audit = ControlAction.objects.get(command="timeout")
    assert (audit.actor, audit.source, audit.state_before, audit.state_after) == ("engine", "engine", "started",
                                                                                  "timedOut")


def test_the_default_start_timeout_comes_from_settings(ctl, sockshop, clock, settings):
    context = ctl.trigger()
    assert step(clock, minutes=9, seconds=59) is False
    assert step(clock, seconds=1) is True
    assert run_of(context).message == "No executor started task 'deployment' within 10m0s."


def test_a_timed_out_sequence_releases_its_lane(ctl, ops, clock):
    ctl.trigger(project="ops", tag="1")
    second = ctl.trigger(project="ops", tag="2")
    assert run_of(second).state == SE.WAITING
    step(clock, minutes=3)
    assert run_of(second).state == SE.STARTED


def test_a_started_task_past_its_timeout_times_out_naming_what_was_heard(ctl, ops, clock):
    context = ctl.trigger(project="ops")
    ctl.finish(current_task(context))
    test = current_task(context)
    ctl.task_event(test, "started", source="jmeter")
    for _ in range(35):  # heartbeats every 50 s keep it alive until its 30m deadline
        ctl.task_event(test, "status.changed", source="jmeter")
        assert step(clock, seconds=50) is False
    ctl.task_event(test, "status.changed", source="jmeter")
    assert step(clock, seconds=49) is False
    assert step(clock, seconds=1) is True
    message = run_of(context).message
    assert message.startswith("Task 'test' did not finish within 30m0s of starting (jmeter started at ")
    assert "not finished" in message


def test_an_executor_that_stops_heartbeating_times_out(ctl, ops, clock):
    context = ctl.trigger(project="ops")
    ctl.finish(current_task(context))
    test = current_task(context)
    ctl.task_event(test, "started", source="jmeter")
    assert step(clock, seconds=50) is False
    assert ctl.post(f"/api/controlPlane/v1/task/{test.triggered_id}/heartbeat").status_code == 200
    assert step(clock, seconds=50) is False
    assert step(clock, seconds=11) is True
    message = run_of(context).message
    assert message.startswith("No heartbeat for task 'test' within 1m0s; last heard at ")


def test_a_heartbeat_for_a_closed_task_is_409(ctl, ops):
    context = ctl.trigger(project="ops")
    task = current_task(context)
    ctl.finish(task)
    assert ctl.post(f"/api/controlPlane/v1/task/{task.triggered_id}/heartbeat").status_code == 409


def test_triggered_after_delays_a_task(ctl, ops, clock):
    context = ctl.trigger(project="ops", sequence="remediation")
    ctl.finish(current_task(context, name="remediation"))
    evaluation = current_task(context, name="remediation")
    assert (evaluation.name, evaluation.state) == ("evaluation", TE.SCHEDULED)
    assert not Event.objects.filter(type="sh.keptn.event.evaluation.triggered").exists()
    assert step(clock, minutes=9, seconds=59) is False
    assert step(clock, seconds=1) is True
    assert current_task(context, name="remediation").state == TE.TRIGGERED
    assert Event.objects.filter(type="sh.keptn.event.evaluation.triggered", context=context).exists()


def test_a_delayed_task_of_a_paused_sequence_waits_for_resume(ctl, ops, clock):
    context = ctl.trigger(project="ops", sequence="remediation")
    ctl.finish(current_task(context, name="remediation"))
    ctl.control(context, "pause", project="ops")
    step(clock, minutes=11)
    assert current_task(context, name="remediation").state == TE.SCHEDULED
    ctl.control(context, "resume", project="ops")
    assert current_task(context, name="remediation").state == TE.TRIGGERED


def test_an_aborting_sequence_whose_task_times_out_is_aborted(ctl, ops, clock):
    context = ctl.trigger(project="ops")
    ctl.finish(current_task(context))
    ctl.task_event(current_task(context), "started", source="jmeter")
    ctl.control(context, "abort", project="ops")
    step(clock, minutes=1, seconds=1)
    run = run_of(context)
    assert (run.state, run.status) == (SE.ABORTED, "aborted")


def test_timeouts_are_not_fired_twice(ctl, ops, clock):
    ctl.trigger(project="ops")
    clock.shift(timedelta(minutes=3))
    assert timeouts.fire_due() == 1
    assert timeouts.fire_due() == 0
    assert ControlAction.objects.filter(command="timeout").count() == 1


def test_the_engine_sleeps_until_the_next_deadline(ctl, ops, clock):
    engine = Engine(max_sleep=3600)
    assert engine.seconds_to_next() == 3600  # nothing to wait for: sleep until woken
    ctl.trigger(project="ops")
    assert engine.seconds_to_next() == pytest.approx(180, abs=0.01)
    clock.shift(timedelta(seconds=100))
    assert engine.seconds_to_next() == pytest.approx(80, abs=0.01)


def test_the_engine_finds_due_timers_through_their_indexes_not_the_task_history(ops):
    """Every engine turn asks which timers are due; the tasks that ended long ago must not cost it. Each
    kind of timer is read off its own partial index, which holds only the tasks in the state it times."""
    from django.db import connection

    names = ["task_start_deadline", "task_deadline", "task_heartbeat", "task_due", "task_kill_deadline"]
    for (timer, due), index in zip(timeouts._timers(timezone.now()), names):
        sql, params = TE.objects.filter(due).order_by(timer.field).values("id")[:50].query.sql_with_params()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":  # a test table of a few rows is cheaper to scan than anything
                cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + ("QUERY PLAN " if connection.vendor == "sqlite" else "") + sql, params)
            plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
        assert index in plan, plan


def test_timers_of_every_kind_fire_in_one_engine_pass(ctl, ops, clock):
    """One task waits for an executor, another is past its deadline: one pass of the engine times out both."""
    from sequences.configuration import create_service

    create_service(ops, "orders")
    waiting = ctl.trigger(project="ops", service="carts")
    running = ctl.trigger(project="ops", service="orders")
    ctl.finish(current_task(running))
    assert ctl.task_event(current_task(running), "started", source="jmeter").status_code == 202
    clock.shift(timedelta(hours=2))
    assert timeouts.fire_due() == 2
    assert {run_of(waiting).state, run_of(running).state} == {SE.TIMED_OUT}


def test_run_engine_once_fires_what_is_due(ctl, ops, clock, capsys):
    context = ctl.trigger(project="ops")
    clock.shift(timedelta(minutes=4))
    call_command("run_engine", "--once")
    assert "did work" in capsys.readouterr().out
    assert run_of(context).state == SE.TIMED_OUT


def test_repair_starts_a_sequence_left_waiting_in_a_free_lane(ctl, sockshop):
    """A crash between two steps is simulated by putting the rows in the state a crash could leave."""
    first = ctl.trigger(tag="1")
    second = ctl.trigger(tag="2")
    SE.objects.filter(context=first).update(state=SE.FINISHED, holds_lane=False)  # the lane let go, nobody told
    assert Engine(repair_every=0).step() is True
    assert run_of(second).state == SE.STARTED
    assert current_task(second).name == "deployment"


def test_repair_triggers_the_next_task_of_a_sequence_left_without_one(ctl, sockshop):
    context = ctl.trigger()
    TE.objects.filter(sequence_execution__context=context).update(state=TE.FINISHED, result="pass",
                                                                  status="succeeded")
    assert Engine(repair_every=0).step() is True
    assert current_task(context).name == "test"
