"""Firing the timers declared in sequences/rules/timers.py: start, total and heartbeat timeouts, triggeredAfter
delays and unconfirmed kills. The engine calls these.

Each expired item is handled in its own short transaction that re-checks the state under lock, so two
engines (or an engine and a request) never apply the same timeout twice.
"""

import logging
import operator
from datetime import datetime, timedelta
from functools import reduce

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from sequences.models import SequenceExecution, TaskExecution
from sequences.notices import metrics as observe
from sequences.rules import timers
from sequences.rules.durations import format_duration
from sequences.rules.timers import FIELDS, TIMERS, Timer
from sequences.store.db import announce, write_transaction
from sequences.transitions import flow, task_moves
from sequences.transitions.moves import audit

SE = SequenceExecution
TE = TaskExecution
BATCH = 50
log = logging.getLogger("bosun.engine")


def _timers(now) -> list[tuple[Timer, Q]]:
    """Each kind of timer (sequences/rules/timers.py) with the condition of its due tasks; each condition
    matches that kind's partial index on TaskExecution."""
    found = []
    for timer in TIMERS:
        due = Q(state=timer.state, **{f"{timer.field}__lte": now})
        if timer.run_state:
            due &= Q(sequence_execution__state=timer.run_state)
        found.append((timer, due))
    return found


def _expired(now) -> Q:
    return reduce(operator.or_, (due for _, due in _timers(now)))


def _expired_ids(now) -> list[int]:
    """Up to BATCH tasks with a timer due, the longest overdue of each kind first. One query per kind, in the
    order of its index: SQLite uses a partial index for a plain condition, not for one arm of an OR."""
    ids = set()
    for timer, due in _timers(now):
        ids.update(TE.objects.filter(due).order_by(timer.field).values_list("id", flat=True)[:BATCH])
    return sorted(ids)[:BATCH]


def next_deadline() -> datetime | None:
    """The earliest moment any timer fires (one indexed query per kind)."""
    found = []
    for timer in TIMERS:
        counting = TE.objects.filter(state=timer.state)
        if timer.run_state:
            counting = counting.filter(sequence_execution__state=timer.run_state)
        found.append(counting.aggregate(m=Min(timer.field))["m"])
    found = [f for f in found if f is not None]
    return min(found) if found else None


def fire_due(now=None) -> int:
    """Fire every timer whose moment has come; returns how many fired."""
    now = now or timezone.now()
    fired = 0
    while True:
        ids = _expired_ids(now)
        if not ids:
            return fired
        progressed = 0
        for task_id in ids:
            try:
                if _fire_one(task_id, now):
                    progressed += 1
            except Exception as exc:  # one bad row must not stop every other timer
                _set_aside(task_id, now, exc)
                progressed += 1
        fired += progressed
        if progressed == 0:
            return fired  # the rest are locked by another engine


def _set_aside(task_id: int, now, exc: Exception):
    """Log a timer that failed, note why on its task, and try it again later (backing off to 5 minutes).

    Its due deadlines move out, so the engine neither spins on it nor keeps other timers waiting.
    """
    log.exception("engine: the timer of task %s failed; it is set aside and retried later", task_id)
    task = TE.objects.filter(id=task_id).values("engine_failures").first()
    if task is None:
        return
    failures = task["engine_failures"] + 1
    later = now + timedelta(seconds=min(300, 5 * 2 ** min(failures, 6)))
    updates = {"engine_failures": failures, "engine_error": f"{now.isoformat()}: {type(exc).__name__}: {exc}"[:2000]}
    with write_transaction():
        row = TE.objects.filter(id=task_id)
        row.update(**updates)
        for field in FIELDS:
            row.filter(**{f"{field}__lte": now}).update(**{field: later})


def _fire_one(task_id: int, now) -> bool:
    with write_transaction():
        tasks = TE.objects.filter(_expired(now), id=task_id).select_related("sequence_execution__project")
        if connection.vendor != "sqlite":
            # Its sequence execution first, then the task, as every other transition locks them; a row
            # another engine or a request holds is skipped, and looked at again on the next turn.
            run_id = TE.objects.filter(id=task_id).values_list("sequence_execution_id", flat=True).first()
            run_lock = SE.objects.filter(id=run_id).select_for_update(skip_locked=True, no_key=True)
            if not run_lock.values_list("id").first():
                return False
            tasks = tasks.select_for_update(skip_locked=True, no_key=True, of=("self",))
        task = tasks.first()
        if task is None:
            return False
        run = task.sequence_execution
        due = [t for t in timers.of_state(task.state) if getattr(task, t.field) and getattr(task, t.field) <= now]
        if not due:
            return False
        timer = min(due, key=lambda t: getattr(task, t.field))
        if timer.fires == "trigger":
            flow.emit_task_triggered(run, task, now)
        elif timer.fires == "killed":
            task_moves.kill_unconfirmed(task, run, now)
        else:
            _time_out(task, run, timer, now)
        announce(run.project.name, run.context)
        return True


def _time_out(task, run, timer, now):
    message = timeout_message(task, run, now)
    before = run.state
    lag = (now - getattr(task, timer.field)).total_seconds()
    flow.time_out_task(task, run, message, now)
    transaction.on_commit(lambda: observe.timeout_fired(timer.kind, lag))
    audit(run, "timeout", actor="engine", source="engine", reason=message, before=before, after=run.state,
          task=task, response={"code": 200, "body": {"message": message}})


def _limit(run, task, key):
    from django.conf import settings

    value = (run.task_spec(task.index) or {}).get(key)
    if key == "startTimeout" and not value:
        value = settings.BOSUN_TASK_START_TIMEOUT
    if key == "heartbeatTimeout" and not value:
        value = task.heartbeat_timeout
    return format_duration(value or 0)


def _heard(task) -> str:
    if not task.executors:
        return "no executor has answered"
    parts = []
    for source, entry in task.executors.items():
        parts.append(f"{source} started at {entry.get('started')}"
                     + (f", finished at {entry['finished']}" if entry.get("finished") else ", not finished"))
    return "; ".join(parts)


def timeout_message(task, run, now) -> str:
    if task.state == TE.TRIGGERED:
        return f"No executor started task '{task.name}' within {_limit(run, task, 'startTimeout')}."
    if task.deadline and task.deadline <= now:
        return (f"Task '{task.name}' did not finish within {_limit(run, task, 'timeout')} of starting "
                f"({_heard(task)}).")
    last = task.last_heard_at.isoformat(timespec="seconds") if task.last_heard_at else "never"
    return (f"No heartbeat for task '{task.name}' within {_limit(run, task, 'heartbeatTimeout')}; "
            f"last heard at {last} ({_heard(task)}).")
