"""Queue policies: how a sequence waits for its lane (the shipyard's `queue` on a sequence).

- fifo (default): waiting sequences start in trigger order.
- newest: when the lane is released, the newest waiting execution of that sequence starts; the older
  waiting ones end `superseded`, each linked to the one that took its turn.
- cancel-in-progress: a new trigger aborts the running execution of the same sequence in that lane
  gracefully, supersedes the older waiting ones, and takes the lane next.
- parallel: takes no lane at all (e.g. an evaluation that only reads).

Follow-ups chained from the lane's holder in the same context (a rollback after a failed delivery) never
wait behind the backlog: they are triggered while the holder still holds the lane (sequences/transitions/flow.py).
This module decides who; sequences/transitions/flow.py moves them, inside the caller's transaction under
the lane's lock, and the audit trail gets one row per sequence a policy ends or aborts, by the actor "queue
policy".
"""

from django.db import connection

from sequences.models import SequenceExecution, TaskExecution
from sequences.store import locks

SE = SequenceExecution
ACTOR = "queue policy"
JUMPS_THE_QUEUE = 1  # queue_priority of a cancel-in-progress trigger that took the place of its own kind


def _older_waiting(execution, newer):
    """Waiting executions of the same sequence in the same lane, triggered before `newer`, oldest first."""
    return list(
        SE.objects.in_lane(execution.project_id, execution.stage, execution.service)
        .waiting().filter(name=execution.name, id__lt=newer.id).exclude(context=newer.context)
        .select_related("project"))


def newest_of(candidate, frozen: bool = False):
    """The lane is free and `candidate` is next: under `newest`, the newest waiting one of its kind
    starts instead, and those older than it are superseded (after it took the lane, so the lane they
    release stays with it). In a `frozen` lane only one let through the freeze may take its turn."""
    if candidate.queue_policy != SE.NEWEST:
        return candidate, []
    newer = (SE.objects.in_lane(candidate.project_id, candidate.stage, candidate.service)
             .filter(state=SE.WAITING, name=candidate.name, queue_policy=SE.NEWEST))
    if frozen:
        newer = newer.filter(passes_freeze=True)
    newest = newer.select_related("project").order_by("-id").first()
    if newest is None or newest.id == candidate.id:
        return candidate, _older_waiting(candidate, candidate)
    return newest, _older_waiting(candidate, newest)


def cancelled_by(execution) -> tuple[list, list]:
    """Under `cancel-in-progress`, what a new trigger takes the place of: the running executions of its
    sequence in its lane (aborted gracefully), and the older waiting ones (superseded)."""
    lane = SE.objects.in_lane(execution.project_id, execution.stage, execution.service)
    running = list(lane.holding().filter(name=execution.name).exclude(context=execution.context)
                   .select_related("project"))
    return running, _older_waiting(execution, execution)


def lock_running(project, stage: str, service: str, name: str) -> None:
    """Before a cancel-in-progress trigger locks the lane: lock the running executions it may abort, and
    their open tasks. Everywhere else these rows are locked before the lane (a task's .finished locks its
    sequence, then the lane to release it), so taking them after the lane could deadlock with that."""
    if connection.vendor == "sqlite":
        return  # one writer at a time: no row locks
    running = SE.objects.in_lane(project, stage, service).holding().filter(name=name)
    ids = list(running.order_by("id").select_for_update(no_key=True).values_list("id", flat=True))
    if ids:
        open_tasks = TaskExecution.objects.filter(sequence_execution_id__in=ids, state__in=TaskExecution.OPEN)
        locks.lock_tasks(list(open_tasks.values_list("triggered_id", flat=True)))
