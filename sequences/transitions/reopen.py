"""Retry from a task: a sequence that failed or timed out at a task goes on from there. A new attempt of that
task is triggered (its earlier attempts keep their logs, facts and events), with the lane taken again; when
the lane is held by another context, or frozen, the sequence waits in line and goes on from that task when it
starts (flow.py's `_start_sequence`). The state machine allows it on the ended sequence's last task only
(`retry` in sequences/rules/machine.py)."""

from sequences.models import SequenceExecution
from sequences.notices import metrics as observe
from sequences.store import lanes
from sequences.store.db import announce
from sequences.store.prepared import save
from sequences.transitions import flow
from sequences.transitions.commands import Outcome, run_command, task_audit, task_work
from sequences.transitions.moves import enter

SE = SequenceExecution
FIELDS = ["state", "result", "status", "message", "ended_at", "holds_lane", "updated_at"]


def reopen(run, task, message: str):
    """The ended `run` goes on with a new attempt of `task`, in its lane again, or waiting for it."""
    project = run.project
    parallel = run.queue_policy == SE.PARALLEL
    if not parallel:
        lanes.lock_lane(project, run.stage, run.service)
    run.result, run.status, run.message, run.ended_at = "", "", message, None
    frozen = project.has_freezes and not run.passes_freeze and project.freeze(run.stage, run.service)
    if not frozen and (parallel or lanes.may_take(run, follow_up=False)):
        enter(run, "reopen", SE.STARTED)
        run.holds_lane = not parallel
        save(run, FIELDS)
        observe.transition("sequence.started", run, message=message)
        flow.trigger_task(run, task.index, attempt=task.attempt + 1)
    else:
        enter(run, "reopen", SE.WAITING)
        save(run, FIELDS)
    announce(project.name, run.context, stage=run.stage, service=run.service)


def retry_task(triggered_id: str, reason: str, *, actor, idempotency_key: str = "") -> Outcome:
    """POST .../task/{triggeredId}/retry: "Retry from here" on the task an ended sequence failed at."""

    def work():
        task, run = task_work(triggered_id, "retry")
        before = run.state
        message = f"Retried from task '{task.name}' by {actor.name}" + (f": {reason}" if reason else ".")
        reopen(run, task, message)
        again = run.task_executions.order_by("-id").first()
        made = again.id != task.id  # else it waits for its lane: the attempt is made when it starts
        body = {"keptnContext": run.context, "stage": run.stage, "task": task.name, "retryOf": task.triggered_id,
                "sequenceState": run.state, "previousState": before,
                "triggeredId": again.triggered_id if made else None, "attempt": again.attempt if made else None,
                "state": again.state if made else None, "message": message}
        return Outcome(200, body), {**task_audit(task, run, before), "after": run.state}

    return run_command("retry", actor, idempotency_key, reason, work, {"task": triggered_id})
