"""The queries each intake path makes, pinned on both databases: a new query on a hot path is a decision, not an accident.

Counted through the whole API request (token check included; its lookup is kept a few seconds).
"""

import pytest
from django.db import connection

from sequences.transitions import commands as control
from tests.helpers import current_task, run_of

OPERATOR = control.Actor("tests", "api")


def on(sqlite: int, postgresql: int) -> int:
    """PostgreSQL also locks rows: the lane's (get or create it, then lock it), and a task's sequence
    execution before the task itself (locks.lock_tasks). SQLite's one writer needs neither."""
    return {"sqlite": sqlite, "postgresql": postgresql}[connection.vendor]


@pytest.fixture
def warm(api, sockshop):
    """A token whose lookup is kept, and a lane in use: what a busy Bosun sees."""
    api.trigger(tag="0", service="orders")
    return api


def test_a_trigger_that_takes_a_free_lane(warm, django_assert_num_queries):
    # the service with its project, who holds the lane and who waits ahead (one statement), the execution, its
    # first task, the event with that task's .triggered (one insert, at the end: one received before fails
    # it), and the transaction's savepoint and release
    with django_assert_num_queries(on(7, 10)):
        warm.trigger(tag="1")


def test_a_trigger_that_waits(warm, django_assert_num_queries):
    with django_assert_num_queries(on(6, 7)):
        warm.trigger(tag="1", service="orders")


def test_a_task_started(warm, django_assert_num_queries):
    context = warm.trigger(tag="1")
    task = current_task(context)
    with django_assert_num_queries(on(5, 5)):
        assert warm.task_event(task, "started").status_code == 202


def test_a_task_finished_hands_off_to_the_next(warm, django_assert_num_queries):
    context = warm.trigger(tag="1")
    task = current_task(context)
    with django_assert_num_queries(on(6, 6)):
        warm.finish(task)
    assert current_task(context).name == "test"


def test_a_last_task_finished_releases_the_lane(warm, django_assert_num_queries):
    context = warm.trigger(tag="1")
    waiting = warm.trigger(tag="2")
    for _ in range(3):
        warm.finish(current_task(context))
    # ... and the delivery's .finished, chaining into staging (a new execution there), and the waiting one
    with django_assert_num_queries(on(17, 21)):
        warm.finish(current_task(context))
    assert run_of(waiting).state == "started"


def test_a_pause(warm, ctl, django_assert_num_queries):
    context = warm.trigger(tag="1")
    ctl.control(context, "resume")  # warms the control token's lookup (answers 409)
    with django_assert_num_queries(5):
        assert ctl.control(context, "pause").status_code == 200
