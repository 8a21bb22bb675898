"""Arming a task's timers (declared in sequences/rules/timers.py): start, running and heartbeat timeouts,
and the wait for a kill's confirmation. The transitions arm them as a task moves;
sequences/transitions/timeouts.py (the engine) fires them when due.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from sequences.notices.metrics import HEARTBEATS
from sequences.rules.timers import FIELDS


def task_limit(sequence, task, key):
    spec = sequence.task_spec(task.index) or {}
    return spec.get(key)


def set_running_deadlines(task, sequence, now):
    task.start_deadline = None
    timeout = task_limit(sequence, task, "timeout")
    task.deadline = now + timedelta(seconds=timeout) if timeout else None


def refresh_heartbeat(task, sequence, now):
    heartbeat = task_limit(sequence, task, "heartbeatTimeout") or task.heartbeat_timeout
    task.heartbeat_deadline = now + timedelta(seconds=heartbeat) if heartbeat else None


KILL_CONFIRM_MARGIN = 5.0  # seconds past the kill grace before an unconfirmed kill is taken as done


def await_kill_confirmation(task, now):
    """A task being killed: its executor has until the kill grace (plus a margin) to confirm it."""
    grace = task.kill_grace if task.kill_grace is not None else settings.BOSUN_KILL_GRACE
    task.deadline = now + timedelta(seconds=grace + KILL_CONFIRM_MARGIN)


def heard_from(task, sequence, now):
    """An executor said it still works on the task: push its heartbeat deadline out."""
    task.last_heard_at = now
    refresh_heartbeat(task, sequence, now)
    task.save(update_fields=["last_heard_at", "heartbeat_deadline"])
    transaction.on_commit(HEARTBEATS.inc)


def clear(task):
    """A task that ended has no timer left."""
    for field in FIELDS:
        setattr(task, field, None)
