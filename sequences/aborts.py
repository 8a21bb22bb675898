"""The abort ladder for one sequence execution (after Cloudify's standard / force / kill).

Operators reach it through sequences/control.py (audited, idempotent); the lane's cancel-in-progress
policy reaches it through sequences/policies.py. Both run inside the caller's transaction.
"""

from . import deadlines, flow, observe
from .models import SequenceExecution, TaskExecution

SE = SequenceExecution
TE = TaskExecution
ACTIVE = (SE.WAITING, SE.STARTED, SE.PAUSED, SE.WAITING_FOR_APPROVAL, SE.ABORTING)


UNFINISHED = TE.OPEN + (TE.SCHEDULED,)  # a run's task that has not ended: running, or yet to be triggered


def open_task(run) -> TaskExecution | None:
    return run.task_executions.filter(state__in=UNFINISHED).order_by("-index").first()


def abort_run(run, mode: str, message: str, now) -> bool:
    """Abort one sequence execution in `mode` (graceful, force, kill); returns whether anything changed.

    graceful: with a running task the sequence is `aborting` and keeps its lane until the task ends;
    otherwise it is `aborted` at once. force: `aborted` now, the open task abandoned. kill: as force, and
    the task's processes are killed (`killing` until an executor confirms). A waiting sequence leaves its
    queue. Kill on an already aborted sequence kills the task a force abort abandoned.
    """
    if run.state == SE.ABORTED and mode == "kill":
        # A task no executor ever started has no process: it is killed at once.
        abandoned = list(run.task_executions.filter(state=TE.ABANDONED, kill_requested_at__isnull=True))
        for task in abandoned:
            task.kill_requested_at = now
            task.state = TE.KILLING if task.executors else TE.KILLED
            if task.state == TE.KILLING:
                deadlines.await_kill_confirmation(task, now)
            task.save(update_fields=["state", "kill_requested_at", "deadline"])
        return bool(abandoned)
    if run.state not in ACTIVE:
        return False
    if run.state == SE.ABORTING and mode == "graceful":
        return False  # already on its way; force or kill escalate
    task = open_task(run)
    if run.state == SE.WAITING or (run.state == SE.PAUSED and run.state_before_pause == SE.WAITING):
        flow.end_sequence(run, SE.ABORTED, "fail", "aborted", message + " It left the queue.")
    elif mode == "graceful" and task is not None and task.state == TE.STARTED:
        # a task no executor has started is not running: nothing to wait for
        run.state, run.state_before_pause = SE.ABORTING, ""
        run.message = message + f" Waiting for the running task '{task.name}' to end."
        run.save(update_fields=["state", "state_before_pause", "message", "updated_at"])
        observe.transition("sequence.aborting", run)
        task.cancel_requested_at = now
        task.save(update_fields=["cancel_requested_at"])
    else:
        if task is not None:
            _close_abandoned(task, mode, now)
        flow.end_sequence(run, SE.ABORTED, "fail", "aborted", message)
    return True


def _close_abandoned(task, mode, now):
    """Force: the task is abandoned (late events fenced off). Kill: killing until an executor confirms."""
    if task.state == TE.SCHEDULED or (mode == "kill" and not task.executors):
        task.state = TE.ABANDONED if mode != "kill" else TE.KILLED
    elif mode == "kill":
        task.state = TE.KILLING
        task.kill_requested_at = now
    else:
        task.state = TE.ABANDONED
    task.result, task.status = "fail", "aborted"
    task.finished_at = now
    task.start_deadline = task.deadline = task.heartbeat_deadline = task.due_at = None
    if task.state == TE.KILLING:
        deadlines.await_kill_confirmation(task, now)
    task.save()
