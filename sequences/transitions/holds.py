"""Freeze windows' moves: when a window ends (the engine's timer, FreezeWindow.next_end), or is changed or
deleted, the sequences it held go on and the waiting ones start, lane by lane in queue order; an operator may
let one sequence through. Holding at a task boundary is decided in flow.py (`_held`), where the next task
would be triggered; what a window means is in sequences/rules/windows.py.
"""

import logging
from datetime import timedelta

from django.db import connection
from django.db.models import Min, Q
from django.utils import timezone

from sequences.models import FreezeWindow, Project, SequenceExecution
from sequences.models.freezes import HELD
from sequences.notices import metrics as observe
from sequences.rules import machine
from sequences.store.db import announce, write_transaction
from sequences.store.prepared import save
from sequences.transitions import flow, policies
from sequences.transitions.commands import Outcome, Refused, context_runs, context_state, run_command, summary
from sequences.transitions.moves import enter

SE = SequenceExecution
log = logging.getLogger("bosun.engine")


def thaw(run, message: str):
    """A run held under a window goes on: its next task is triggered (or, still frozen, it holds again)."""
    enter(run, "thaw")
    run.state_before_pause = ""
    run.frozen_by = ""
    run.message = message
    save(run, ["state", "state_before_pause", "frozen_by", "passes_freeze", "message", "updated_at"])
    observe.transition("sequence.resumed", run, message=message)
    flow.go_on(run)


def let_through(run, who: str, reason: str):
    """An operator lets one sequence through the freeze: a held one goes on now; a waiting one goes first in
    its lane's line and starts as soon as the lane is free, frozen or not. Later windows do not hold it."""
    run.passes_freeze = True
    words = f"Let through the freeze by {who}" + (f": {reason}" if reason else ".")
    if run.state == SE.PAUSED:
        thaw(run, words)
    else:
        run.queue_priority = policies.JUMPS_THE_QUEUE
        run.message = words
        save(run, ["passes_freeze", "queue_priority", "message", "updated_at"])
        flow.release_lane(run.project, run.stage, run.service, thawed=True)
    announce(run.project.name, run.context, stage=run.stage, service=run.service)


def reconsider(project, now=None) -> int:
    """After a window of `project` ended, changed or was deleted: in every lane where sequences hold or wait,
    the held ones that no window holds any more go on and the waiting ones start as the queue allows, lanes
    in the order of their oldest waiting sequence. Returns how many lanes were looked at."""
    now = now or timezone.now()
    project = Project.objects.get(pk=project.pk)  # its windows as they are now
    rows = (SE.objects.filter(project=project).filter(HELD | Q(state=SE.WAITING))
            .values("stage", "service").annotate(first=Min("id")).order_by("first"))
    for lane in rows:
        stage, service = lane["stage"], lane["service"]
        freeze = project.freeze(stage, service, now)
        if freeze is None or not freeze.holds_running:
            held = SE.objects.filter(HELD, project=project, stage=stage, service=service).order_by("id")
            if connection.vendor != "sqlite":
                held = held.select_for_update(no_key=True)
            for run in held:
                run.project = project
                thaw(run, f"The freeze window '{run.frozen_by}' ended; it goes on.")
        if freeze is None:
            flow.release_lane(project, stage, service, thawed=True)
        announce(project.name, "", stage=stage, service=service)
    return len(rows)


def next_end():
    """When the next window ends (the engine sleeps no longer than that)."""
    return FreezeWindow.objects.filter(next_end__isnull=False).aggregate(m=Min("next_end"))["m"]


def fire_ended(now=None) -> int:
    """Every window whose occurrence has ended: its project's lanes are reconsidered, and its timer moves to
    the end of its next occurrence (none for a one-off). Returns how many windows ended."""
    now = now or timezone.now()
    fired = 0
    for window_id in FreezeWindow.objects.filter(next_end__lte=now).order_by("next_end").values_list("id", flat=True):
        try:
            with write_transaction():
                window = FreezeWindow.objects.filter(id=window_id, next_end__lte=now).select_related("project").first()
                if window is None:
                    continue  # another engine took it
                window.next_end = window.rule().next_change(now)
                window.save(update_fields=["next_end"])
                reconsider(window.project, now)
                fired += 1
        except Exception:  # one bad window must not stop the others; it is tried again a little later
            log.exception("engine: the end of freeze window %s could not be handled; trying again in 5s", window_id)
            FreezeWindow.objects.filter(id=window_id).update(next_end=now + timedelta(seconds=5))
    return fired


def let_through_command(project_name: str, context: str, *, actor, stage: str, reason: str,
                        idempotency_key: str = ""):
    """POST .../sequence/{project}/{context}/let-through: the operator's command (audited, with its reason),
    for the context's sequences in `stage` that wait in a frozen lane or hold under a window."""
    if not (reason or "").strip():
        return Outcome(400, {"code": 400, "message": "reason is required: say why this sequence may pass the "
                                                     "freeze (it is kept in the audit trail)."})
    if not stage:
        return Outcome(400, {"code": 400, "message": "stage is required: the stage whose sequence is let through."})

    def work():
        runs = [r for r in context_runs(project_name, context) if r.stage == stage]
        if not runs:
            raise Refused(404, f"Context {context} has no sequence in stage '{stage}'.")
        before = context_state(runs)
        frozen = [r for r in runs if machine.run_allows("let-through", r.state, frozen=r.frozen())]
        if not frozen:
            raise Refused(409, machine.refusal("let-through", f"Stage '{stage}' of context {context}", before)
                          + " Only a sequence that waits in a frozen lane, or holds under a freeze window, is let "
                            "through.", state=before)
        for run in frozen:
            let_through(run, actor.name, reason)
        for run in runs:
            run.refresh_from_db()
        after = context_state(runs)
        body = {"keptnContext": context, "state": after, "previousState": before, "sequenceExecutions": summary(runs)}
        return Outcome(200, body), {"run": frozen[0], "before": before, "after": after}

    return run_command("let-through", actor, idempotency_key, reason, work,
                       {"project": project_name, "context": context, "stage": stage})
