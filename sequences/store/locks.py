"""Row locks, always taken in one order: sequence executions first and then tasks, each by id.

Every transition that changes a task locks through here, so two transactions never wait for each other's
rows (no deadlock). A lane's row is locked after these (sequences/store/lanes.py).
"""

from django.db import connection

from sequences.models import SequenceExecution as SE
from sequences.models import TaskExecution as TE
from sequences.store.prepared import Prepared


def lock_tasks(triggered_ids) -> dict:
    """The tasks with these ids, locked for the rest of the transaction (with their sequences and projects).

    Locks are always taken in one order, sequence executions first and then tasks, each by id, as
    control commands take them: two transactions never wait for each other's rows (no deadlock).
    """
    tasks = TE.objects.order_by().select_related("sequence_execution", "sequence_execution__project").filter(
        triggered_id__in=list(triggered_ids))
    if connection.vendor != "sqlite":
        runs = TE.objects.filter(triggered_id__in=list(triggered_ids)).values("sequence_execution_id")
        list(SE.objects.filter(id__in=runs).order_by("id").select_for_update(no_key=True).values_list("id", flat=True))
        tasks = tasks.order_by("id").select_for_update(no_key=True, of=("self",))
    return {task.triggered_id: task for task in tasks}


def lock_task(triggered_id: str):
    """The task with this id, locked (its sequence execution first), or None. Every task event asks.

    On PostgreSQL one statement locks both: rows are locked in the order of the FOR UPDATE OF list, the
    sequence execution and then the task, and a row changed while it waited is read again at its newest."""
    found = (_task if connection.vendor == "sqlite" else _locked_task)(triggered_id)
    return found[0] if found else None


def _tasks(triggered_id):
    return TE.objects.order_by().select_related("sequence_execution", "sequence_execution__project").filter(
        triggered_id=triggered_id)


_task = Prepared(_tasks, str)
_locked_task = Prepared(lambda triggered_id: _tasks(triggered_id).select_for_update(
    no_key=True, of=("sequence_execution", "self")), str)
