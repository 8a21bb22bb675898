"""The moves of one task that decide nothing about its sequence: an executor starts it, it ends (finished,
timed out, killed, abandoned), a kill is confirmed or taken as done; and what a task is given (its payload)
and how executors' answers add up (its outcome). sequences/transitions/flow.py decides what follows.
"""

from sequences.models import Event, TaskExecution
from sequences.notices import metrics as observe
from sequences.rules import cloudevents as ev
from sequences.rules.durations import format_duration
from sequences.store.prepared import Prepared, save
from sequences.transitions import deadlines
from sequences.transitions.eventlog import store_event
from sequences.transitions.moves import audit, enter

TE = TaskExecution


class PayloadError(Exception):
    """A stored payload that cannot be merged into a task's input (a shape intake would refuse today)."""


# A sequence's task executions in index order (the payload of its next task, its end)
tasks_of = Prepared(lambda execution_id: TE.objects.filter(sequence_execution_id=execution_id).order_by("index"), int)


def snapshot(task) -> dict:
    """A shipyard task as a sequence execution keeps it (the shipyard may change while it runs)."""
    kept = {"name": task.name, "properties": task.properties, "triggeredAfter": task.triggered_after,
            "startTimeout": task.start_timeout, "timeout": task.timeout, "heartbeatTimeout": task.heartbeat_timeout}
    if task.approval:
        kept["approval"] = task.approval
    if task.retry:
        kept["retry"] = task.retry
    return kept


def merged_payload(execution, upto_index: int, strict: bool = True, tasks=None) -> dict:
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


def outcome(executors) -> tuple[str, str]:
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


def approval_mode(task, data) -> str:
    """Keptn's approval task: `pass`/`warning` properties say automatic or manual for the last result."""
    previous = data.get("result") or "pass"
    return (task.properties or {}).get(previous, "manual")


def emit_answer(execution, task, kind, extra):
    """A `.started`/`.finished` Bosun sends for a task it answers itself (an automatic approval)."""
    data = {"project": execution.project.name, "stage": execution.stage, "service": execution.service, **extra}
    payload = ev.make_event(ev.task_type(task.name, kind), data, execution.context, task.triggered_id,
                            gitcommitid=execution.gitcommitid)
    payload["source"] = "bosun"
    store_event(payload, outcome=Event.EMITTED, context=execution.context)


def executor_started(task, sequence, source, now, also=()):
    """A `.started` from one executor: the task runs; its running deadlines start counting. `also` names
    other fields of the task the caller changed, saved with these."""
    if source not in task.executors:
        task.executors[source] = {"started": ev.now_iso(now), "finished": None}
    if task.state == TE.TRIGGERED:
        enter(task, "start")
        task.started_at = now
        deadlines.set_running_deadlines(task, sequence, now)
    task.last_heard_at = now
    deadlines.refresh_heartbeat(task, sequence, now)
    save(task, ["executors", "state", "started_at", "start_deadline", "deadline", "last_heard_at",
                "heartbeat_deadline", *also])


def executor_finished(task, source, data, now) -> bool:
    """A `.finished` from one executor (with no `.started` from that source first it counts as both);
    whether every executor that started the task has now finished it."""
    entry = task.executors.get(source) or {"started": ev.now_iso(now)}
    entry.update(finished=ev.now_iso(now), result=data.get("result") or "pass",
                 status=data.get("status") or "succeeded", message=data.get("message") or "")
    task.executors[source] = entry
    if task.state == TE.TRIGGERED:
        enter(task, "start")
        task.started_at = now
    task.finished_data = ev.deep_merge(task.finished_data, data)
    task.last_heard_at = now
    if any(e.get("finished") is None for e in task.executors.values()):
        save(task)
        return False
    return True


END_FIELDS = ["state", "result", "status", "message", "finished_at", *deadlines.FIELDS]


def end(task, execution, move, state, result, status, message, now, also=None):
    """A task ends by `move` (finish, time-out, kill, ...) in `state`. `also`: the other fields of the task
    the caller changed, when it knows them (else the whole task is written)."""
    enter(task, move, state)
    task.result, task.status = result, status
    task.message = message
    task.finished_at = now
    deadlines.clear(task)
    if task.state == TE.KILLING:
        deadlines.await_kill_confirmation(task, now)
    save(task, None if also is None else [*END_FIELDS, *also])
    observe.transition(f"task.{task.state}", execution, task, result=result, status=status, message=message)


def abandon(task, execution, mode, now):
    """Its sequence is aborted by force (abandoned: late events are fenced off) or with kill (killing until
    an executor confirms; killed at once when no executor ever started it)."""
    if task.state == TE.SCHEDULED or (mode == "kill" and not task.executors):
        state = TE.ABANDONED if mode != "kill" else TE.KILLED
    elif mode == "kill":
        state = TE.KILLING
        task.kill_requested_at = now
    else:
        state = TE.ABANDONED
    end(task, execution, "abandon", state, "fail", "aborted", task.message, now)


def still_running(task, context: str) -> str:
    """What a person must know of a task a force abort abandoned while an executor ran it: its job may go on."""
    where = task.claimed_by or ", ".join(sorted(task.executors)) or "its executor"
    return (f"Its task '{task.name}' was abandoned, but its job may still be running on {where}: to stop it, "
            f"abort again with mode kill (bosun abort sequence --context {context} --kill, or the Bridge's "
            f"'Kill its abandoned task').")


def kill_abandoned(run, now) -> bool:
    """Kill the tasks a force abort of `run` abandoned while an executor ran them; whether there were any."""
    abandoned = list(run.task_executions.filter(state=TE.ABANDONED, kill_requested_at__isnull=True))
    for task in abandoned:
        task.kill_requested_at = now
        enter(task, "kill", TE.KILLING if task.executors else TE.KILLED)
        if task.state == TE.KILLING:
            deadlines.await_kill_confirmation(task, now)
        save(task, ["state", "kill_requested_at", "deadline"])
    return bool(abandoned)


def confirm_killed(task):
    """An executor confirms it terminated a task's processes."""
    enter(task, "confirm-killed")
    task.deadline = None
    save(task, ["state", "deadline"])


def kill_unconfirmed(task, run, now):
    """No executor confirmed a kill in time: the task is taken as killed, and says so."""
    waited = format_duration((now - task.kill_requested_at).total_seconds()) if task.kill_requested_at else "?"
    note = f"No executor confirmed the kill within {waited}; it is taken as killed."
    before = enter(task, "kill-unconfirmed")
    task.deadline = None
    task.message = f"{task.message} {note}".strip()
    save(task, ["state", "deadline", "message"])
    audit(run, "kill-unconfirmed", actor="engine", source="engine", reason=note, before=before, after=task.state,
          task=task, response={"code": 200, "body": {"message": note}})
