"""How a sequence goes: triggered, it waits for its lane or starts; its tasks are triggered one after another;
it ends (finished, aborted, timed out, superseded), chains what the shipyard says follows, and lets its lane
go to the next in line. The abort ladder (graceful / force / kill) and the queue policies' moves are here too,
since an abort ends a sequence and an ending starts the next.

States are entered through sequences/transitions/moves.py, as sequences/rules/machine.py allows. Events come
in through sequences/transitions/arrivals.py, commands through sequences/transitions/commands.py, timers
through sequences/transitions/timeouts.py. They all run inside one transaction per action.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from sequences.models import Event, SequenceExecution, TaskExecution
from sequences.notices import metrics as observe
from sequences.rules import cloudevents as ev
from sequences.store import lanes
from sequences.store.db import announce
from sequences.store.prepared import save
from sequences.transitions import policies, task_moves
from sequences.transitions.eventlog import emit, store_event
from sequences.transitions.moves import audit, enter
from sequences.transitions.task_moves import PayloadError, tasks_of

SE = SequenceExecution
TE = TaskExecution


def trigger_sequence(project, stage, sequence, service, data, context, triggered_id, gitcommitid="",
                     new_context=False, rerun_of=None):
    """Create a sequence execution; it takes its lane at once if it may, else it waits.

    Its queue policy (sequences/transitions/policies.py) may let it take no lane (parallel), or make it take
    the place of the running and waiting executions of its sequence (cancel-in-progress).
    """
    policy = getattr(sequence, "queue", SE.FIFO)
    execution = SE(
        root=new_context or not SE.objects.filter(project=project, context=context).exists(),
        project=project, stage=stage, service=service, name=sequence.name, context=context,
        triggered_id=triggered_id, gitcommitid=gitcommitid, input_data=data,
        tasks=[task_moves.snapshot(t) for t in sequence.tasks], queue_policy=policy, rerun_of=rerun_of,
    )
    if policy == SE.CANCEL_IN_PROGRESS:
        policies.lock_running(project, stage, service, sequence.name)
    if policy != SE.PARALLEL:
        lanes.lock_lane(project, stage, service)
    # The state it starts in is decided before the row is written: one INSERT, no UPDATE after it. In a
    # frozen lane (sequences/rules/windows.py) it waits, whatever its policy, until the window ends.
    frozen = project.has_freezes and project.freeze(stage, service) is not None
    if not frozen and (policy == SE.PARALLEL or lanes.may_take(execution, follow_up=rerun_of is None)):
        _start_sequence(execution, take_lane=policy != SE.PARALLEL)
    else:
        enter(execution, "wait")
        save(execution)
        if policy == SE.CANCEL_IN_PROGRESS:
            cancel_in_progress(execution)
    announce(project.name, context, stage=stage, service=service)
    return execution


def _start_sequence(execution, take_lane=True):
    again = execution.started_at is not None  # retried from a task (reopen.py) while its lane was taken
    enter(execution, "start")
    execution.holds_lane = take_lane
    execution.started_at = timezone.now()
    if execution.pk is None:
        save(execution)
    else:
        save(execution, ["state", "holds_lane", "started_at", "updated_at"])
    observe.transition("sequence.started", execution)
    if again:  # it goes on from the task it failed at, with a new attempt of it
        last = execution.task_executions.order_by("-id").first()
        trigger_task(execution, last.index, attempt=last.attempt + 1)
    else:
        trigger_task(execution, 0)


def trigger_task(execution, index: int, tasks=None, attempt: int = 1, delay: float | None = None):
    """Create the task execution; emit its .triggered now, or schedule it after its triggeredAfter (or, for a
    retry's attempt, after `delay`: its backoff).

    `tasks`, when the caller has them, are the task executions before this one, in index order."""
    spec = execution.task_spec(index)
    if spec is None:  # a stored run without its tasks (written by hand): it ends, so its lane moves on
        end_sequence(execution, "finish", SE.FINISHED, "fail", "errored",
                     "The sequence has no task to trigger: its stored tasks are empty.")
        return None
    now = timezone.now()
    task = TE(sequence_execution=execution, index=index, name=spec["name"], properties=spec.get("properties"),
              triggered_id=str(uuid.uuid4()), attempt=attempt)
    wait = spec.get("triggeredAfter") if delay is None else delay
    if wait:
        enter(task, "schedule")
        task.due_at = now + timedelta(seconds=wait)
        save(task)
        return task
    emit_task_triggered(execution, task, now, tasks)
    return task


def emit_task_triggered(execution, task, now, tasks=None):
    spec = execution.task_spec(task.index)
    try:
        data = task_moves.merged_payload(execution, task.index, tasks=tasks)
    except PayloadError as exc:
        # Fail this sequence alone, with the reason, so its lane moves on to the next one.
        message = f"Task '{task.name}' could not be triggered: {exc}."
        if task.pk:
            enter(task, "trigger")
            task_moves.end(task, execution, "finish", TE.FINISHED, "fail", "errored", message, now)
        end_sequence(execution, "finish", SE.FINISHED, "fail", "errored", message)
        return
    if spec.get("properties"):
        own = data.get(task.name)
        data[task.name] = ev.deep_merge(own if isinstance(own, dict) else {}, spec["properties"])
    enter(task, "trigger")
    task.triggered_at = now
    task.due_at = None
    approval_mode = task_moves.approval_mode(task, data) if task.name == "approval" else None
    if approval_mode == "manual":
        task.start_deadline = None  # a person decides; no executor is expected to start it
    else:
        start_timeout = spec.get("startTimeout") or settings.BOSUN_TASK_START_TIMEOUT
        task.start_deadline = now + timedelta(seconds=start_timeout)
    save(task)
    payload = ev.make_event(ev.task_type(task.name, "triggered"), data, execution.context, moment=now,
                            gitcommitid=execution.gitcommitid)
    payload["id"] = task.triggered_id
    store_event(payload, outcome=Event.EMITTED, context=execution.context)
    observe.transition("task.triggered", execution, task)
    if approval_mode == "automatic":
        result = data.get("result") or "pass"
        task_moves.emit_answer(execution, task, "finished", {"result": result, "status": "succeeded",
                                                             "message": f"Approved automatically ({result})."})
        task.executors = {"bosun-approval": {"started": ev.now_iso(now), "finished": ev.now_iso(now),
                                             "result": result, "status": "succeeded"}}
        finish_task(task, execution, "finish", TE.FINISHED, result, "succeeded", "Approved automatically.", now)
    elif approval_mode == "manual":
        enter(execution, "await-approval")
        save(execution, ["state", "updated_at"])


def finish_task(task, execution, move, state, result, status, message, now, also=None):
    """A task ends by `move` (finish, kill) in `state`: record it and decide what follows. `also`: the other
    fields of the task the caller changed, when it knows them (else the whole task is written)."""
    task_moves.end(task, execution, move, state, result, status, message, now, also)
    if execution.state == SE.WAITING_FOR_APPROVAL:
        enter(execution, "approval-decided")
        save(execution, ["state", "updated_at"])
    advance(execution, task)


def advance(execution, finished_task):
    """What follows a task's end: the sequence's end when aborting or failed, else the next task."""
    if execution.state == SE.ABORTING:
        end_sequence(execution, "abort", SE.ABORTED, "fail", "aborted",
                     f"Aborted; the running task '{finished_task.name}' ended ({finished_task.state}).")
        return
    if finished_task.result == "fail":
        if _retried(execution, finished_task):
            return
        end_sequence(execution, "finish", SE.FINISHED, "fail", finished_task.status,
                     finished_task.message or f"Task '{finished_task.name}' failed.")
        return
    if execution.state == SE.PAUSED:
        return  # resume triggers what the pause held back
    next_index = finished_task.index + 1
    if execution.task_spec(next_index) is not None:
        if _held(execution):
            return
        # After the first task, the tasks before the next one are known without asking the database.
        trigger_task(execution, next_index, tasks=[finished_task] if finished_task.index == 0 else None)
        return
    tasks = tasks_of(execution.id)
    result = "warning" if any(t.result == "warning" for t in tasks) else "pass"
    end_sequence(execution, "finish", SE.FINISHED, result, "succeeded", tasks=tasks, only_its_end=True)


def _held(execution) -> bool:
    """At a task boundary, under a freeze window that holds running sequences (and unless an operator let it
    through): it holds, paused by the window, until the window ends (sequences/transitions/holds.py)."""
    project = execution.project
    if not project.has_freezes or execution.passes_freeze:
        return False
    freeze = project.freeze(execution.stage, execution.service)
    if freeze is None or not freeze.holds_running:
        return False
    execution.state_before_pause = enter(execution, "hold")
    execution.frozen_by = freeze.window
    execution.message = f"Held at its task boundary: {freeze.words()}."
    save(execution, ["state", "state_before_pause", "frozen_by", "message", "updated_at"])
    observe.transition("sequence.paused", execution, message=execution.message)
    announce(project.name, execution.context, stage=execution.stage, service=execution.service)
    return True


def go_on(run, tasks=None):
    """A run that was paused (by a person, or held by a freeze window) goes on from where it stopped: the task
    the pause held back is triggered (or it ends, if that task was its last)."""
    tasks = tasks if tasks is not None else tasks_of(run.id)
    current = next((t for t in reversed(tasks) if t.state in TE.UNFINISHED), None)
    if current is None:
        last = tasks[-1] if tasks else None
        if last is None:
            trigger_task(run, 0)
        else:
            advance(run, last)  # what the pause held back: the next task, or the sequence's end
    elif current.state == TE.SCHEDULED and current.due_at and current.due_at <= timezone.now():
        emit_task_triggered(run, current, timezone.now())


def _retried(execution, task) -> bool:
    """Under the task's retry policy (the shipyard's `retry`), a new attempt of it instead of the sequence's
    end: when it ended as the policy's `on` says (fail, errored or timedOut), attempts are left, and nobody
    ended it by hand. The new attempt is triggered after the policy's backoff (a timer); a paused sequence
    makes it when it is resumed."""
    policy = (execution.task_spec(task.index) or {}).get("retry")
    ended = "timedOut" if task.state == TE.TIMED_OUT else "errored" if task.status == "errored" else "fail"
    if not policy or ended not in policy["on"] or task.attempt > policy["limit"] or task.finished_by:
        return False
    if execution.state == SE.PAUSED:
        return True  # the resume advances from this task again, and retries it then
    if execution.state != SE.STARTED:
        return False
    trigger_task(execution, task.index, attempt=task.attempt + 1, delay=policy["backoff"])
    announce(execution.project.name, execution.context, stage=execution.stage, service=execution.service)
    return True


def time_out_task(task, execution, message, now):
    """A timer fired: the task is timedOut; its sequence is timedOut (or aborted, if it was aborting), unless
    its retry policy tries it again."""
    task_moves.end(task, execution, "time-out", TE.TIMED_OUT, "fail", "errored", message, now)
    if execution.state != SE.ABORTING and _retried(execution, task):
        return
    if execution.state == SE.ABORTING:
        end_sequence(execution, "abort", SE.ABORTED, "fail", "aborted", f"Aborted; {message}")
    else:
        end_sequence(execution, "time-out", SE.TIMED_OUT, "fail", "errored", message)


END_FIELDS = ["state", "state_before_pause", "result", "status", "message", "ended_at", "holds_lane", "updated_at"]


def end_sequence(execution, move, state, result, status, message="", tasks=None, only_its_end=False):
    """End a sequence by `move`: emit its .finished, fire chained sequences (finished only), release the lane.

    `tasks`, when the caller has them, are its task executions in index order. `only_its_end`: the caller
    changed nothing else of `execution`, so only the fields of its end are written."""
    project = execution.project
    tasks = tasks if tasks is not None else tasks_of(execution.id)
    chained = []
    if state == SE.FINISHED:
        task_results = {t.name: t.result for t in tasks}
        chained = list(project.parsed_shipyard().chained(execution.stage, execution.name, result, task_results))
    enter(execution, move, state)
    execution.state_before_pause = ""
    execution.result, execution.status = result, status
    execution.message = message or execution.message
    execution.ended_at = timezone.now()
    # The lane is let go only after chaining, so a same-context follow-up (rollback) goes first.
    execution.holds_lane = execution.holds_lane and bool(chained)
    save(execution, END_FIELDS if only_its_end else None)
    observe.transition(f"sequence.{state}", execution, result=result, status=status, message=message)
    data = task_moves.merged_payload(execution, len(execution.tasks), strict=False, tasks=tasks)
    data.update(result=result, status=status)
    if message:
        data["message"] = message
    emit(ev.sequence_type(execution.stage, execution.name, "finished"), data, execution.context,
         execution.triggered_id, execution.gitcommitid)
    for stage, sequence in chained:
        chained_data = {**data, "stage": stage.name}
        chained_data.pop("message", None)
        event = emit(ev.sequence_type(stage.name, sequence.name, "triggered"), chained_data, execution.context,
                     gitcommitid=execution.gitcommitid)
        trigger_sequence(project, stage.name, sequence, execution.service, chained_data, execution.context,
                         event.event_id, execution.gitcommitid)
    if execution.holds_lane:
        execution.holds_lane = False
        save(execution, ["holds_lane", "updated_at"])
    release_lane(project, execution.stage, execution.service)
    announce(project.name, execution.context, stage=execution.stage, service=execution.service)


def release_lane(project, stage: str, service: str, *, thawed: bool = False):
    """Start waiting sequences, in queue order, while the lane is free or held by their own context.

    Queue order is FIFO by trigger, except that a cancel-in-progress trigger goes first and a `newest`
    sequence lets its newest waiting execution start in place of the older ones, which are superseded.
    `thawed`: a freeze may have stopped holding the lane (a window ended or went, a sequence was let through
    or resumed), so the parallel sequences that waited for the freeze alone start too, whoever holds the lane.
    In a frozen lane only a sequence let through starts, and a newer one of its kind takes its turn only if
    it was let through too: a pass is given to one execution, never handed on.
    """
    lanes.lock_lane(project, stage, service)
    if thawed:
        _start_parallel(project, stage, service)
    frozen = project.has_freezes and project.freeze(stage, service) is not None
    while True:
        in_line = lanes.next_in_line(project, stage, service)
        if not in_line:
            return
        candidate = in_line[0]
        if candidate.blocked or (frozen and not candidate.passes_freeze):
            return
        chosen, superseded = policies.newest_of(candidate, frozen=frozen)
        _start_sequence(chosen, take_lane=True)
        for older in superseded:
            supersede(older, chosen, SE.NEWEST)
        announce(project.name, chosen.context, stage=stage, service=service)
        # Only a sequence of the holder's own context may follow it into the lane; unless the queue changed
        # (a newer one started, older ones were superseded), the one after it is already known.
        follower = in_line[1] if len(in_line) > 1 else None
        if chosen is candidate and not superseded and (follower is None or follower.context != chosen.context):
            return


def _start_parallel(project, stage: str, service: str):
    """Parallel sequences take no lane and wait for nothing but a freeze window: those it no longer holds (or
    that were let through) start, oldest first. They are not in the lane's line (store/lanes.py)."""
    waiting = list(SE.objects.in_lane(project.id, stage, service).filter(state=SE.WAITING, queue_policy=SE.PARALLEL)
                   .order_by("id"))
    frozen = bool(waiting) and project.has_freezes and project.freeze(stage, service) is not None
    for run in waiting:
        if frozen and not run.passes_freeze:
            continue
        run.project = project
        _start_sequence(run, take_lane=False)
        announce(project.name, run.context, stage=stage, service=service)


# --- ending early: the abort ladder and the queue policies ---------------------------------------


def abort_run(run, mode: str, message: str, now) -> bool:
    """Abort one sequence execution in `mode` (graceful, force, kill); returns whether anything changed.

    graceful: with a running task the sequence is `aborting` and keeps its lane until the task ends;
    otherwise it is `aborted` at once. force: `aborted` now, the open task abandoned. kill: as force, and
    the task's processes are killed (`killing` until an executor confirms). A waiting sequence leaves its
    queue. Kill on an already aborted sequence kills the task a force abort abandoned.
    """
    if run.state == SE.ABORTED and mode == "kill":
        return task_moves.kill_abandoned(run, now)
    if run.state not in SE.ACTIVE or (run.state == SE.ABORTING and mode == "graceful"):
        return False  # ended already; or already on its way, which force or kill escalate
    task = run.task_executions.filter(state__in=TE.UNFINISHED).order_by("-index").first()
    if run.state == SE.WAITING or (run.state == SE.PAUSED and run.state_before_pause == SE.WAITING):
        end_sequence(run, "abort", SE.ABORTED, "fail", "aborted", message + " It left the queue.")
    elif mode == "graceful" and task is not None and task.state == TE.STARTED:
        # a task no executor has started is not running: nothing to wait for
        enter(run, "abort-gracefully")
        run.state_before_pause = ""
        run.message = message + f" Waiting for the running task '{task.name}' to end."
        save(run, ["state", "state_before_pause", "message", "updated_at"])
        observe.transition("sequence.aborting", run)
        task.cancel_requested_at = now
        save(task, ["cancel_requested_at"])
    else:
        if task is not None:
            task_moves.abandon(task, run, mode, now)
            if task.state == TE.ABANDONED and task.executors:  # its job was not asked to stop
                message = f"{message} {task_moves.still_running(task, run.context)}"
        end_sequence(run, "abort", SE.ABORTED, "fail", "aborted", message)
    return True


def supersede(run, by, policy: str):
    """End a waiting execution `superseded`: a newer one of the same sequence took its turn."""
    before = run.state
    run.superseded_by = by
    save(run, ["superseded_by", "updated_at"])
    message = (f"Superseded by a newer {by.name} (context {by.context}) under the lane's "
               f"'{policy}' queue policy; it never started.")
    end_sequence(run, "supersede", SE.SUPERSEDED, "fail", "aborted", message)
    audit(run, "supersede", actor=policies.ACTOR, source="engine", reason=message, before=before, after=run.state)


def cancel_in_progress(execution):
    """A new trigger under `cancel-in-progress`: it takes the place of the running and waiting ones
    of its sequence in this lane. Call with `execution` waiting and the lane locked."""
    running, older = policies.cancelled_by(execution)
    if not running and not older:
        return
    # First in line before anything is let go, so the lane an abort frees passes to this one.
    execution.queue_priority = policies.JUMPS_THE_QUEUE
    save(execution, ["queue_priority", "updated_at"])
    for run in older:
        supersede(run, execution, SE.CANCEL_IN_PROGRESS)
    for holder in running:
        if holder.state == SE.ABORTING:
            continue  # already on its way out
        before = holder.state
        reason = (f"A newer {execution.name} (context {execution.context}) was triggered; the lane's "
                  "'cancel-in-progress' queue policy aborts this one gracefully.")
        if abort_run(holder, "graceful", f"Aborted by the lane's queue policy: {reason}", timezone.now()):
            holder.refresh_from_db(fields=["state"])
            audit(holder, "abort:graceful", actor=policies.ACTOR, source="engine", reason=reason, before=before,
                  after=holder.state)
