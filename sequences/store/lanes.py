"""Lanes: (project, stage, service). Who holds one, who waits in it, at which position, behind whom.

Taking and releasing a lane happens in sequences/transitions/flow.py, under the lane's lock taken here.
"""

from collections import defaultdict

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from sequences.models import Lane, Project, SequenceExecution
from sequences.store.prepared import Prepared, fetch_one


def lock_lane(project, stage: str, service: str) -> None:
    """Lock the lane's row for the rest of the transaction. On SQLite the writer lock already serialises
    every write, so no row is needed there."""
    if connection.vendor == "sqlite":
        return
    project_id = project if isinstance(project, int) else project.id
    if not _lane_row(project_id, stage, service):  # the lane's first use: make its row, then lock it
        Lane.objects.bulk_create([Lane(project_id=project_id, stage=stage, service=service)], ignore_conflicts=True)
        _lane_row(project_id, stage, service)


_lane_row = Prepared(lambda project_id, stage, service: Lane.objects.order_by().select_for_update(no_key=True).filter(
    project_id=project_id, stage=stage, service=service).values_list("pk"), int, str, str, values=True)


def _holders(table: str) -> str:
    """FROM clause for a lane's holders. SQLite, planning without statistics, would walk the lane's whole
    history through seq_lane_queue; the partial index seq_holders has a row per holder only."""
    return f"{table} INDEXED BY seq_holders" if connection.vendor == "sqlite" else table


def _blocked() -> RawSQL:
    """For a waiting row: whether a context other than its own holds its lane (a look-up of the lane's
    holders in the same statement as the line's)."""
    table = SequenceExecution._meta.db_table
    holders = f"{table} AS h INDEXED BY seq_holders" if connection.vendor == "sqlite" else f"{table} AS h"
    return RawSQL(f"EXISTS (SELECT 1 FROM {holders} WHERE h.project_id = {table}.project_id AND "
                  f"h.stage = {table}.stage AND h.service = {table}.service AND h.holds_lane AND "
                  f"h.context <> {table}.context)", [], output_field=BooleanField())


def may_take(sequence: SequenceExecution, follow_up: bool = True) -> bool:
    """Whether a sequence that is not yet queued may take its lane now.

    It may when the lane is held only by its own context and it is a follow-up (a rollback after a failed
    delivery does not wait for it; a re-run, `follow_up=False`, does), or when the lane is free and nobody
    who is not paused waits ahead of it (strict FIFO). One statement asks all three questions: it runs for
    every trigger.
    """
    table = SequenceExecution._meta.db_table
    lane = "project_id = %s AND stage = %s AND service = %s"
    ahead = "queue_priority > %s OR (queue_priority = %s" + (")" if sequence.id is None else " AND id < %s)")
    params = [sequence.project_id, sequence.stage, sequence.service]
    priority = [sequence.queue_priority, sequence.queue_priority] + ([] if sequence.id is None else [sequence.id])
    other_holder, held, someone_ahead = (bool(v) for v in fetch_one(
        f"SELECT EXISTS (SELECT 1 FROM {_holders(table)} WHERE {lane} AND holds_lane AND context <> %s), "
        f"EXISTS (SELECT 1 FROM {_holders(table)} WHERE {lane} AND holds_lane), "
        f"EXISTS (SELECT 1 FROM {table} WHERE {lane} AND state = '{SequenceExecution.WAITING}' AND ({ahead}))",
        [*params, sequence.context, *params, *params, *priority]))
    if held:
        return follow_up and not other_holder
    return not someone_ahead


def line(project, stage: str, service: str):
    """The lane's waiting sequences that are not paused (paused ones keep their place but are passed over),
    in start order. A cancel-in-progress trigger that took its sequence's place goes first
    (queue_priority); then FIFO. The order is the seq_lane_queue index's: reading the first few never
    sorts the queue. Parallel sequences take no lane and are not in its line: one waits for a freeze window
    only (transitions/flow.py starts it when the lane thaws).
    """
    return (SequenceExecution.objects.in_lane(project, stage, service).filter(state=SequenceExecution.WAITING)
            .exclude(queue_policy=SequenceExecution.PARALLEL).order_by("-queue_priority", "id"))


def next_in_line(project, stage: str, service: str) -> list[SequenceExecution]:
    """The first two of the line, the next to start and who would follow it, each with `blocked`: whether
    a context other than its own holds the lane. One query."""
    found = _first_two(project.id, stage, service)
    for sequence in found:
        sequence.project = project
    return found


_first_two = Prepared(lambda project_id, stage, service: line(project_id, stage, service).annotate(
    blocked=_blocked())[:2], int, str, str)


def queue_info(sequences) -> dict[int, dict]:
    """For each waiting sequence among `sequences`: {position (1 = next), blockedBy (the holder or None),
    frozen (the freeze window that keeps its lane, or None), policy, description}. Under `newest`, the description says how many older ones will be skipped.

    Two queries whatever the number of sequences: the queues of the lanes involved and their holders (and,
    for runs that do not carry their project, one for the projects with freeze windows; one for each such
    project's windows).
    """
    waiting = [s for s in sequences if s.state == SequenceExecution.WAITING or (
        s.state == SequenceExecution.PAUSED and s.state_before_pause == SequenceExecution.WAITING)]
    if not waiting:
        return {}
    lane_filter = None
    for project_id, stage, service in {s.lane_key for s in waiting}:
        q = Q(project_id=project_id, stage=stage, service=service)
        lane_filter = q if lane_filter is None else lane_filter | q
    queues: dict[tuple, list[int]] = defaultdict(list)
    newest_of_kind: dict[tuple, int] = {}  # (lane, sequence name) -> id of the newest waiting under `newest`
    of_kind: dict[tuple, list[int]] = defaultdict(list)  # (lane, sequence name) -> waiting ids
    for row_id, project_id, stage, service, name, policy, state in SequenceExecution.objects.filter(
            lane_filter).waiting().values_list("id", "project_id", "stage", "service", "name", "queue_policy", "state"):
        if policy == SequenceExecution.PARALLEL:
            continue  # not in the line: it waits for a freeze window alone
        queues[(project_id, stage, service)].append(row_id)
        of_kind[(project_id, stage, service, name)].append(row_id)
        if policy == SequenceExecution.NEWEST and state == SequenceExecution.WAITING:
            key = (project_id, stage, service, name)
            newest_of_kind[key] = max(row_id, newest_of_kind.get(key, 0))
    holder_of: dict[tuple, SequenceExecution] = {}
    for holder in SequenceExecution.objects.filter(lane_filter).holding().order_by("id"):
        holder_of.setdefault(holder.lane_key, holder)
    frozen_projects = _projects_with_freezes(waiting)
    info = {}
    for s in waiting:
        queue = queues.get(s.lane_key, [])
        position = queue.index(s.id) + 1 if s.id in queue else None
        holder = holder_of.get(s.lane_key)
        entry = {
            "position": position,
            "blockedBy": None if holder is None else {
                "keptnContext": holder.context,
                "_id": str(holder.execution_id),
                "sequence": holder.name,
                "state": holder.state,
            },
            **policy_info(s),
            "frozen": freeze_info(frozen_projects.get(s.project_id), s),
        }
        newest = newest_of_kind.get((*s.lane_key, s.name))
        if s.queue_policy == SequenceExecution.NEWEST and newest:
            skipped = sum(1 for other in of_kind[(*s.lane_key, s.name)] if other < newest)
            entry["skipped"] = skipped
            entry["description"] = policy_words(s.queue_policy, skipped, s.name)
            entry["willBeSkipped"] = s.id != newest
        info[s.id] = entry
    return info


def _projects_with_freezes(runs) -> dict:
    """{id: project} of the runs' projects that have freeze windows: from the runs when they carry their project
    (no query), else one query."""
    known = {s.project_id: s.project for s in runs if SequenceExecution.project.is_cached(s)}
    missing = {s.project_id for s in runs} - set(known)
    if missing:
        known.update((p.id, p) for p in Project.objects.filter(id__in=missing).exclude(freeze_key=""))
    return {pid: p for pid, p in known.items() if p.has_freezes}


def freeze_info(project, run) -> dict | None:
    """A waiting run's freeze: {until, window, description}, or None (no window is on, or it was let through)."""
    freeze = None if project is None or run.passes_freeze else project.freeze(run.stage, run.service)
    if freeze is None:
        return None
    return {"until": freeze.until.isoformat().replace("+00:00", "Z"), "window": freeze.window,
            "description": freeze.words()}


def policy_words(policy: str, skipped: int = 0, name: str = "") -> str:
    """The policy in words: "newest first: 3 older deliveries will be skipped"."""
    words = {
        SequenceExecution.FIFO: "first in, first out",
        SequenceExecution.NEWEST: "newest first",
        SequenceExecution.CANCEL_IN_PROGRESS: "cancel in progress",
        SequenceExecution.PARALLEL: "parallel: takes no lane",
    }.get(policy, policy)
    if policy == SequenceExecution.NEWEST and skipped:
        plural = (name[:-1] + "ies" if name.endswith("y") else name + "s") if skipped != 1 else name
        return f"{words}: {skipped} older {plural or 'executions'} will be skipped"
    return words


def policy_info(run: SequenceExecution) -> dict:
    return {"policy": run.queue_policy, "description": policy_words(run.queue_policy)}
