"""Lanes: (project, stage, service). Who holds one, who waits in it, at which position, behind whom.

Taking and releasing a lane happens in sequences/flow.py, under the lane's lock taken here.
"""

from collections import defaultdict

from django.db import connection

from .models import Lane, SequenceExecution


def lock_lane(project, stage: str, service: str) -> Lane:
    """Lock the lane's row for the rest of the transaction (SQLite: the writer lock already serialises)."""
    lane, _ = Lane.objects.get_or_create(project=project, stage=stage, service=service)
    if connection.vendor != "sqlite":
        lane = Lane.objects.select_for_update().get(pk=lane.pk)
    return lane


def holders(project, stage: str, service: str) -> list[SequenceExecution]:
    return list(SequenceExecution.objects.in_lane(project, stage, service).holding().order_by("id"))


def may_take(sequence: SequenceExecution) -> bool:
    """Whether a sequence that is not yet queued may take its lane now.

    It may when the lane is held only by its own context (a rollback after a failed delivery does not
    wait for it), or when the lane is free and nobody who is not paused waits ahead of it (strict FIFO).
    """
    lane = SequenceExecution.objects.in_lane(sequence.project_id, sequence.stage, sequence.service)
    current = holders(sequence.project_id, sequence.stage, sequence.service)
    if current:
        return all(h.context == sequence.context for h in current)
    return not lane.filter(state=SequenceExecution.WAITING, id__lt=sequence.id).exists()


def next_in_line(project, stage: str, service: str) -> SequenceExecution | None:
    """The first waiting sequence that is not paused (paused ones keep their place but are passed over)."""
    return (
        SequenceExecution.objects.in_lane(project, stage, service)
        .filter(state=SequenceExecution.WAITING)
        .order_by("id")
        .first()
    )


def queue_info(sequences) -> dict[int, dict]:
    """For each waiting sequence among `sequences`: {position (1 = next), blockedBy (the holder or None)}.

    Two queries whatever the number of sequences: the queues of the lanes involved and their holders.
    """
    waiting = [s for s in sequences if s.state == SequenceExecution.WAITING or (
        s.state == SequenceExecution.PAUSED and s.state_before_pause == SequenceExecution.WAITING)]
    if not waiting:
        return {}
    lanes = {(s.project_id, s.stage, s.service) for s in waiting}
    lane_filter = None
    from django.db.models import Q

    for project_id, stage, service in lanes:
        q = Q(project_id=project_id, stage=stage, service=service)
        lane_filter = q if lane_filter is None else lane_filter | q
    queues: dict[tuple, list[int]] = defaultdict(list)
    for row in SequenceExecution.objects.filter(lane_filter).waiting().values_list(
        "id", "project_id", "stage", "service"
    ):
        queues[row[1:]].append(row[0])
    holder_of: dict[tuple, SequenceExecution] = {}
    for holder in SequenceExecution.objects.filter(lane_filter).holding().order_by("id"):
        holder_of.setdefault(holder.lane_key, holder)
    info = {}
    for s in waiting:
        queue = queues.get(s.lane_key, [])
        position = queue.index(s.id) + 1 if s.id in queue else None
        holder = holder_of.get(s.lane_key)
        info[s.id] = {
            "position": position,
            "blockedBy": None if holder is None else {
                "keptnContext": holder.context,
                "_id": str(holder.execution_id),
                "sequence": holder.name,
                "state": holder.state,
            },
        }
    return info
