"""The engine's safety net: mend what a crash between two steps could leave (each step is atomic).

1. A free lane with sequences waiting in it: start the first.
2. A started sequence with no task open or scheduled: trigger what follows its last task.
3. An aborting sequence with no task open: it is aborted.

Each item is mended in its own transaction; one that fails is logged and skipped, so a bad row never
keeps the others from being mended.
"""

import logging

from django.db import connection

from sequences.models import Project, SequenceExecution, TaskExecution
from sequences.store.db import announce, write_transaction
from sequences.transitions import flow

SE = SequenceExecution
TE = TaskExecution
log = logging.getLogger("bosun.engine")


def repair() -> int:
    """Mend what can be mended; returns how many items were mended."""
    mended = 0
    waiting_lanes = set(SE.objects.filter(state=SE.WAITING).values_list("project_id", "stage", "service"))
    held = set(SE.objects.filter(holds_lane=True).values_list("project_id", "stage", "service"))
    parallel = set(SE.objects.filter(state=SE.WAITING, queue_policy=SE.PARALLEL)
                   .values_list("project_id", "stage", "service"))  # they wait for a freeze only, held or not
    for project_id, stage, service in sorted((waiting_lanes - held) | parallel):
        try:
            with write_transaction():
                flow.release_lane(Project.objects.get(pk=project_id), stage, service, thawed=True)
            mended += 1
        except Exception:
            log.exception("engine: could not start the queue of lane %s/%s/%s; going on", project_id, stage, service)
    busy = TE.objects.filter(state__in=TE.OPEN + (TE.SCHEDULED,)).values("sequence_execution_id")
    stuck = SE.objects.filter(state__in=(SE.STARTED, SE.ABORTING)).exclude(id__in=busy)
    for run_id in list(stuck.values_list("id", flat=True)[:100]):
        try:
            if _mend_run(run_id, busy):
                mended += 1
        except Exception:
            log.exception("engine: could not mend sequence execution %s; going on", run_id)
    return mended


def _mend_run(run_id: int, busy) -> bool:
    with write_transaction():
        runs = SE.objects.filter(id=run_id, state__in=(SE.STARTED, SE.ABORTING)).exclude(id__in=busy)
        if connection.vendor != "sqlite":
            runs = runs.select_for_update(skip_locked=True, no_key=True, of=("self",))
        run = runs.select_related("project").first()
        if run is None:
            return False
        last = run.task_executions.order_by("-index").first()
        if run.state == SE.ABORTING:
            flow.end_sequence(run, "abort", SE.ABORTED, "fail", "aborted", "Aborted; no task was running.")
        elif last is None:
            flow.trigger_task(run, 0)
        else:
            flow.advance(run, last)
        announce(run.project.name, run.context)
        return True
