"""Timers: start, total and heartbeat timeouts, and triggeredAfter delays. The engine calls these.

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

from . import flow, observe
from .db import announce, write_transaction
from .models import ControlAction, SequenceExecution, TaskExecution
from .shipyard import format_duration

SE = SequenceExecution
TE = TaskExecution
BATCH = 50
log = logging.getLogger("bosun.engine")


def _timers(now) -> list[tuple[str, Q]]:
    """(the field its index is ordered by, its condition) per kind of timer, each matching one of the
    partial indexes on TaskExecution."""
    return [
        ("start_deadline", Q(state=TE.TRIGGERED, start_deadline__lte=now)),
        ("deadline", Q(state=TE.STARTED, deadline__lte=now)),
        ("heartbeat_deadline", Q(state=TE.STARTED, heartbeat_deadline__lte=now)),
        ("due_at", Q(state=TE.SCHEDULED, due_at__lte=now, sequence_execution__state=SE.STARTED)),
        ("deadline", Q(state=TE.KILLING, deadline__lte=now)),
    ]


def _expired(now) -> Q:
    return reduce(operator.or_, (timer for _, timer in _timers(now)))


def _expired_ids(now) -> list[int]:
    """Up to BATCH tasks with a timer due, the longest overdue of each kind first. One query per kind, in the
    order of its index: SQLite uses a partial index for a plain condition, not for one arm of an OR."""
    ids = set()
    for field, timer in _timers(now):
        ids.update(TE.objects.filter(timer).order_by(field).values_list("id", flat=True)[:BATCH])
    return sorted(ids)[:BATCH]


def next_deadline() -> datetime | None:
    """The earliest moment any timer fires (one indexed query per kind)."""
    found = [
        TE.objects.filter(state=TE.TRIGGERED).aggregate(m=Min("start_deadline"))["m"],
        TE.objects.filter(state=TE.STARTED).aggregate(m=Min("deadline"))["m"],
        TE.objects.filter(state=TE.STARTED).aggregate(m=Min("heartbeat_deadline"))["m"],
        TE.objects.filter(state=TE.SCHEDULED, sequence_execution__state=SE.STARTED).aggregate(m=Min("due_at"))["m"],
        TE.objects.filter(state=TE.KILLING).aggregate(m=Min("deadline"))["m"],
    ]
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
        for field in ("start_deadline", "deadline", "heartbeat_deadline", "due_at"):
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
        if task.state == TE.SCHEDULED:
            flow.emit_task_triggered(run, task, now)
            announce(run.project.name, run.context)
            return True
        if task.state == TE.KILLING:
            _unconfirmed_kill(task, run, now)
            return True
        message = timeout_message(task, run, now)
        before = run.state
        due = [d for d in (task.start_deadline, task.deadline, task.heartbeat_deadline) if d and d <= now]
        kind = ("start" if task.start_deadline in due else "heartbeat" if task.heartbeat_deadline in due
                else "deadline")
        lag = (now - min(due)).total_seconds() if due else 0.0
        flow.time_out_task(task, run, message, now)
        transaction.on_commit(lambda: observe.timeout_fired(kind, lag))
        ControlAction.objects.create(
            sequence_execution=run, task_execution=task, project=run.project.name, context=run.context,
            command="timeout", actor="engine", source="engine", reason=message, state_before=before,
            state_after=run.state, response={"code": 200, "body": {"message": message}},
        )
        announce(run.project.name, run.context)
        return True


def _unconfirmed_kill(task, run, now):
    """No executor confirmed a kill in time: the task is taken as killed, and says so."""
    waited = format_duration((now - task.kill_requested_at).total_seconds()) if task.kill_requested_at else "?"
    note = f"No executor confirmed the kill within {waited}; it is taken as killed."
    task.state = TE.KILLED
    task.deadline = None
    task.message = f"{task.message} {note}".strip()
    task.save(update_fields=["state", "deadline", "message"])
    ControlAction.objects.create(
        sequence_execution=run, task_execution=task, project=run.project.name, context=run.context,
        command="kill-unconfirmed", actor="engine", source="engine", reason=note, state_before=TE.KILLING,
        state_after=TE.KILLED, response={"code": 200, "body": {"message": note}},
    )
    announce(run.project.name, run.context)


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
