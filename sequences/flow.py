"""The transitions of sequences and tasks: trigger, start, finish, advance, end, release a lane.

Every state a sequence or task execution takes is assigned here, or by sequences/control.py (the
operator's commands) and sequences/timeouts.py (the engine's timers) through these helpers. Events come
in through sequences/intake.py. They all run inside one transaction per action.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import events as ev
from . import deadlines, lanes, observe, policies
from .db import announce
from .eventlog import emit, store_event  # noqa: F401 (the transitions' callers store events through flow)
from .models import Event, SequenceExecution, TaskExecution
from .prepared import Prepared, save

SE = SequenceExecution
TE = TaskExecution


class PayloadError(Exception):
    """A stored payload that cannot be merged into a task's input (a shape intake would refuse today)."""


def executor_started(task, sequence, source, now, also=()):
    """A `.started` from one executor: the task runs; its running deadlines start counting. `also` names
    other fields of the task the caller changed, saved with these."""
    if source not in task.executors:
        task.executors[source] = {"started": ev.now_iso(now), "finished": None}
    if task.state == TE.TRIGGERED:
        task.state = TE.STARTED
        task.started_at = now
        deadlines.set_running_deadlines(task, sequence, now)
    task.last_heard_at = now
    deadlines.refresh_heartbeat(task, sequence, now)
    save(task, ["executors", "state", "started_at", "start_deadline", "deadline", "last_heard_at",
                             "heartbeat_deadline", *also])


def executor_finished(task, sequence, source, data, now):
    """A `.finished` from one executor; with no `.started` from that source first it counts as both."""
    entry = task.executors.get(source) or {"started": ev.now_iso(now)}
    entry.update(
        finished=ev.now_iso(now),
        result=data.get("result") or "pass",
        status=data.get("status") or "succeeded",
        message=data.get("message") or "",
    )
    task.executors[source] = entry
    if task.state == TE.TRIGGERED:
        task.state = TE.STARTED
        task.started_at = now
    task.finished_data = ev.deep_merge(task.finished_data, data)
    task.last_heard_at = now
    if any(e.get("finished") is None for e in task.executors.values()):
        save(task)
        return
    result, status = task_outcome(task.executors.values())
    finish_task(task, sequence, TE.FINISHED, result, status, data.get("message") or "", now,
                also=["executors", "started_at", "finished_data", "last_heard_at"])


def task_outcome(executors) -> tuple[str, str]:
    """fail if any result is fail or any status errored/unknown, else warning if any, else pass."""
    results = [e.get("result") for e in executors]
    statuses = [e.get("status") for e in executors]
    if "errored" in statuses:
        status = "errored"
    elif "aborted" in statuses:
        status = "aborted"
    elif "unknown" in statuses:
        status = "unknown"
    else:
        status = "succeeded"
    if "fail" in results or status != "succeeded":
        return "fail", status
    return ("warning" if "warning" in results else "pass"), status


# --- sequences -------------------------------------------------------------------------------


def trigger_sequence(project, stage, sequence, service, data, context, triggered_id, gitcommitid="",
                     new_context=False):
    """Create a sequence execution; it takes its lane at once if it may, else it waits.

    Its queue policy (sequences/policies.py) may let it take no lane (parallel), or make it take the
    place of the running and waiting executions of its sequence (cancel-in-progress).
    """
    policy = getattr(sequence, "queue", SE.FIFO)
    execution = SE(
        root=new_context or not SE.objects.filter(project=project, context=context).exists(),
        project=project,
        stage=stage,
        service=service,
        name=sequence.name,
        context=context,
        triggered_id=triggered_id,
        gitcommitid=gitcommitid,
        input_data=data,
        tasks=[_task_snapshot(t) for t in sequence.tasks],
        queue_policy=policy,
    )
    if policy == SE.CANCEL_IN_PROGRESS:
        policies.lock_running(project, stage, service, sequence.name)
    if policy != SE.PARALLEL:
        lanes.lock_lane(project, stage, service)
    # The state it starts in is decided before the row is written: one INSERT, no UPDATE after it.
    if policy == SE.PARALLEL or lanes.may_take(execution):
        _start_sequence(execution, take_lane=policy != SE.PARALLEL)
    else:
        execution.state = SE.WAITING
        save(execution)
        if policy == SE.CANCEL_IN_PROGRESS:
            policies.cancel_in_progress(execution)
    announce(project.name, context, stage=stage, service=service)
    return execution


def _task_snapshot(task) -> dict:
    return {
        "name": task.name,
        "properties": task.properties,
        "triggeredAfter": task.triggered_after,
        "startTimeout": task.start_timeout,
        "timeout": task.timeout,
        "heartbeatTimeout": task.heartbeat_timeout,
    }


def _start_sequence(execution, take_lane=True):
    execution.state = SE.STARTED
    execution.holds_lane = take_lane
    execution.started_at = timezone.now()
    if execution.pk is None:
        save(execution)
    else:
        save(execution, ["state", "holds_lane", "started_at", "updated_at"])
    observe.transition("sequence.started", execution)
    trigger_task(execution, 0)


def _merged_payload(execution, upto_index: int, strict: bool = True, tasks=None) -> dict:
    """The sequence's input deep-merged with every earlier task's .finished data, result/status of the last.

    `tasks`, when the caller has them, are the sequence's task executions in index order (saves a query).
    A stored payload that cannot be merged raises PayloadError (strict), or gives the bare scope (not
    strict: a sequence must be able to end whatever its data).
    """
    if tasks is None:
        tasks = tasks_of(execution.id) if upto_index > 0 else []
    finished = [t for t in tasks if t.index < upto_index and t.state == TE.FINISHED]
    try:
        data = ev.deep_merge({}, execution.input_data)
        for task in finished:
            data = ev.deep_merge(data, task.finished_data)
    except (AttributeError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        if strict:
            raise PayloadError(f"its stored input data cannot be used ({type(exc).__name__})") from exc
        data = {}
    if finished:
        data["result"], data["status"] = finished[-1].result, finished[-1].status
    data.update(project=execution.project.name, stage=execution.stage, service=execution.service)
    return data


# A sequence's task executions in index order (the payload of its next task, its end)
tasks_of = Prepared(lambda execution_id: TE.objects.filter(sequence_execution_id=execution_id).order_by("index"), int)


def trigger_task(execution, index: int, tasks=None):
    """Create the task execution; emit its .triggered now, or schedule it after its triggeredAfter.

    `tasks`, when the caller has them, are the task executions before this one, in index order."""
    spec = execution.task_spec(index)
    now = timezone.now()
    task = TE(sequence_execution=execution, index=index, name=spec["name"], properties=spec.get("properties"),
              triggered_id=str(uuid.uuid4()))
    if spec.get("triggeredAfter"):
        task.state = TE.SCHEDULED
        task.due_at = now + timedelta(seconds=spec["triggeredAfter"])
        save(task)
        return task
    emit_task_triggered(execution, task, now, tasks)
    return task


def emit_task_triggered(execution, task, now, tasks=None):
    spec = execution.task_spec(task.index)
    try:
        data = _merged_payload(execution, task.index, tasks=tasks)
    except PayloadError as exc:
        # Fail this sequence alone, with the reason, so its lane moves on to the next one.
        message = f"Task '{task.name}' could not be triggered: {exc}."
        if task.pk:
            task.state, task.result, task.status, task.message = TE.FINISHED, "fail", "errored", message
            task.finished_at = now
            deadlines.clear_deadlines(task)
            save(task)
        end_sequence(execution, SE.FINISHED, "fail", "errored", message)
        return
    if spec.get("properties"):
        own = data.get(task.name)
        data[task.name] = ev.deep_merge(own if isinstance(own, dict) else {}, spec["properties"])
    task.state = TE.TRIGGERED
    task.triggered_at = now
    task.due_at = None
    approval_mode = _approval_mode(task, data) if task.name == "approval" else None
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
        _emit_task_answer(execution, task, "finished", {"result": result, "status": "succeeded",
                                                        "message": f"Approved automatically ({result})."})
        task.executors = {"bosun-approval": {"started": ev.now_iso(now), "finished": ev.now_iso(now),
                                             "result": result, "status": "succeeded"}}
        finish_task(task, execution, TE.FINISHED, result, "succeeded", "Approved automatically.", now)
    elif approval_mode == "manual":
        execution.state = SE.WAITING_FOR_APPROVAL
        save(execution, ["state", "updated_at"])


def _approval_mode(task, data) -> str:
    """Keptn's approval task: `pass`/`warning` properties say automatic or manual for the last result."""
    previous = data.get("result") or "pass"
    return (task.properties or {}).get(previous, "manual")


def _emit_task_answer(execution, task, kind, extra):
    data = {"project": execution.project.name, "stage": execution.stage, "service": execution.service, **extra}
    payload = ev.make_event(ev.task_type(task.name, kind), data, execution.context, task.triggered_id,
                            gitcommitid=execution.gitcommitid)
    payload["source"] = "bosun"
    store_event(payload, outcome=Event.EMITTED, context=execution.context)


FINISH_FIELDS = ["state", "result", "status", "message", "finished_at", "start_deadline", "deadline",
                 "heartbeat_deadline", "due_at"]


def finish_task(task, execution, state, result, status, message, now, also=None):
    """A task ends (finished, timed out, killed, ...): record it and decide what follows. `also`: the other
    fields of the task the caller changed, when it knows them (else the whole task is written)."""
    task.state = state
    task.result, task.status = result, status
    task.message = message
    task.finished_at = now
    deadlines.clear_deadlines(task)
    save(task, None if also is None else [*FINISH_FIELDS, *also])
    observe.transition(f"task.{state}", execution, task, result=result, status=status)
    if execution.state == SE.WAITING_FOR_APPROVAL:
        execution.state = SE.STARTED
        save(execution, ["state", "updated_at"])
    advance(execution, task)


def advance(execution, finished_task):
    """What follows a task's end: the sequence's end when aborting or failed, else the next task."""
    if execution.state == SE.ABORTING:
        end_sequence(execution, SE.ABORTED, "fail", "aborted",
                     f"Aborted; the running task '{finished_task.name}' ended ({finished_task.state}).")
        return
    if finished_task.result == "fail":
        status = finished_task.status if finished_task.status != "succeeded" else "succeeded"
        end_sequence(execution, SE.FINISHED, "fail", status,
                     finished_task.message or f"Task '{finished_task.name}' failed.")
        return
    if execution.state == SE.PAUSED:
        return  # resume triggers what the pause held back
    next_index = finished_task.index + 1
    if execution.task_spec(next_index) is not None:
        # After the first task, the tasks before the next one are known without asking the database.
        trigger_task(execution, next_index, tasks=[finished_task] if finished_task.index == 0 else None)
        return
    tasks = tasks_of(execution.id)
    result = "warning" if any(t.result == "warning" for t in tasks) else "pass"
    end_sequence(execution, SE.FINISHED, result, "succeeded", tasks=tasks, only_its_end=True)


END_FIELDS = ["state", "state_before_pause", "result", "status", "message", "ended_at", "holds_lane", "updated_at"]


def end_sequence(execution, state, result, status, message="", tasks=None, only_its_end=False):
    """End a sequence: emit its .finished, fire chained sequences (finished only), release the lane.

    `tasks`, when the caller has them, are its task executions in index order. `only_its_end`: the caller
    changed nothing else of `execution`, so only the fields of its end are written."""
    project = execution.project
    tasks = tasks if tasks is not None else tasks_of(execution.id)
    chained = []
    if state == SE.FINISHED:
        task_results = {t.name: t.result for t in tasks}
        chained = list(project.parsed_shipyard().chained(execution.stage, execution.name, result, task_results))
    execution.state = state
    execution.state_before_pause = ""
    execution.result, execution.status = result, status
    execution.message = message or execution.message
    execution.ended_at = timezone.now()
    # The lane is let go only after chaining, so a same-context follow-up (rollback) goes first.
    execution.holds_lane = execution.holds_lane and bool(chained)
    save(execution, END_FIELDS if only_its_end else None)
    observe.transition(f"sequence.{state}", execution, result=result, status=status, message=message)
    data = _merged_payload(execution, len(execution.tasks), strict=False, tasks=tasks)
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


def release_lane(project, stage: str, service: str):
    """Start waiting sequences, in queue order, while the lane is free or held by their own context.

    Queue order is FIFO by trigger, except that a cancel-in-progress trigger goes first and a `newest`
    sequence lets its newest waiting execution start in place of the older ones, which are superseded.
    """
    lanes.lock_lane(project, stage, service)
    while True:
        in_line = lanes.next_in_line(project, stage, service)
        if not in_line or in_line[0].blocked:
            return
        candidate = in_line[0]
        chosen, superseded = policies.newest_of(candidate)
        _start_sequence(chosen)
        for older in superseded:
            policies.supersede(older, chosen, SE.NEWEST)
        announce(project.name, chosen.context, stage=stage, service=service)
        # Only a sequence of the holder's own context may follow it into the lane; unless the queue changed
        # (a newer one started, older ones were superseded), the one after it is already known.
        follower = in_line[1] if len(in_line) > 1 else None
        if chosen is candidate and not superseded and (follower is None or follower.context != chosen.context):
            return


def time_out_task(task, execution, message, now):
    """A timer fired: the task is timedOut; its sequence is timedOut (or aborted, if it was aborting)."""
    task.state = TE.TIMED_OUT
    task.result, task.status = "fail", "errored"
    task.message = message
    task.finished_at = now
    deadlines.clear_deadlines(task)
    save(task)
    observe.transition("task.timedOut", execution, task, message=message)
    if execution.state == SE.ABORTING:
        end_sequence(execution, SE.ABORTED, "fail", "aborted", f"Aborted; {message}")
    else:
        end_sequence(execution, SE.TIMED_OUT, "fail", "errored", message)
