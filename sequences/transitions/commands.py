"""The operator's commands: pause, resume, abort (graceful / force / kill), re-run, force-finish, kill (approving is in
decisions.py, on the same helpers: run_command, task_work).

Each command is one atomic function that locks what it decides on, checks the state, changes it through
sequences/transitions/flow.py's helpers, and writes its audit row. A repeated Idempotency-Key returns the first answer;
a command that does not apply answers 409 with the current state. The API, the Bridge, admin actions and
the engine call these; nobody else.
"""

import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, connection
from django.utils import timezone

from sequences.models import ControlAction, Project, SequenceExecution, TaskExecution
from sequences.notices import metrics as observe
from sequences.rules import cloudevents as ev
from sequences.rules import machine
from sequences.store import locks
from sequences.store.db import announce, write_transaction
from sequences.store.prepared import Prepared, save
from sequences.transitions import deadlines, flow, reruns, task_moves
from sequences.transitions.moves import audit, enter

SE = SequenceExecution
TE = TaskExecution
MODES = ("graceful", "force", "kill")


@dataclass
class Outcome:
    code: int
    body: dict


@dataclass
class Actor:
    """Who gives a command, and from where (bridge, api, cli, admin, engine)."""

    name: str
    source: str


class Refused(Exception):
    def __init__(self, code: int, message: str, **extra):
        super().__init__(message)
        self.outcome = Outcome(code, {"code": code, "message": message, **extra})


def _locked(queryset):
    # FOR NO KEY UPDATE of these rows only: inserts that reference them (their FK checks)
    # do not wait for it, and joined rows such as the project are not locked at all.
    return queryset.select_for_update(no_key=True, of=("self",)) if connection.vendor != "sqlite" else queryset


MAX_REASON = 2000  # characters of a reason; names and keys are bounded by their fields
MAX_KEY = 200


def _digest(command: str, request: dict) -> str:
    return hashlib.sha256(json.dumps([command, request], sort_keys=True, default=str).encode()).hexdigest()


def _replay(done: ControlAction, digest: str) -> Outcome:
    if done.request_digest and done.request_digest != digest:
        what = f"'{done.command}' of context {done.context}" + (
            f", task '{done.task_execution.name}'" if done.task_execution_id else "")
        return Outcome(409, {"code": 409, "message": (
            f"Idempotency-Key {done.idempotency_key!r} was already used for another request ({what}); "
            "it was not applied again. Use a new key for a new request.")})
    return Outcome(done.response.get("code", 200), done.response.get("body", {}))


def run_command(command: str, actor: Actor, key: str, reason: str, work, request: dict) -> Outcome:
    """Idempotency, transaction and audit around one command; `work()` returns (Outcome, audit fields).

    A key belongs to its actor. The same key with the same request answers as the first time; with a
    different request (another command, target or option) it answers 409 and changes nothing.
    """
    if len(reason or "") > MAX_REASON:
        return Outcome(400, {"code": 400, "message": f"reason is {len(reason)} characters long; "
                                                     f"at most {MAX_REASON} are accepted."})
    if len(key or "") > MAX_KEY:
        return Outcome(400, {"code": 400, "message": f"Idempotency-Key is longer than {MAX_KEY} characters."})
    digest = _digest(command, {**request, "reason": reason})
    mine = ControlAction.objects.filter(actor=actor.name, idempotency_key=key).select_related("task_execution")
    if key:
        done = mine.first()
        if done is not None:
            return _replay(done, digest)
    try:
        with write_transaction():
            if key and mine.exists():
                raise IntegrityError("idempotency key taken")
            try:
                outcome, row = work()
            except Refused as refused:
                return refused.outcome
            audit(command=command, actor=actor.name, source=actor.source, reason=reason, idempotency_key=key,
                  request_digest=digest, response={"code": outcome.code, "body": outcome.body}, **row)
            return outcome
    except IntegrityError:
        # the same key, committed by a concurrent request a moment ago: answer as it did
        done = mine.first()
        if done is None:
            raise
        return _replay(done, digest)


def summary(runs) -> list[dict]:
    return [{"_id": str(r.execution_id), "stage": r.stage, "service": r.service, "sequence": r.name,
             "state": r.state, "stateBeforePause": r.state_before_pause} for r in runs]


def context_state(runs) -> str:
    active = [r for r in runs if r.state not in SE.TERMINAL]
    return (active or runs)[-1].state if runs else ""


# --- sequences -------------------------------------------------------------------------------


def control_sequence(project_name: str, context: str, state: str, *, actor: Actor, stage: str | None = None,
                     mode: str | None = None, suspend_running: bool = False, reason: str = "",
                     idempotency_key: str = "") -> Outcome:
    """POST .../sequence/{project}/{context}/control: pause, resume or abort a context (or one stage)."""
    if state not in ("pause", "resume", "abort"):
        return Outcome(400, {"code": 400, "message": f"state must be pause, resume or abort, not {state!r}."})
    mode = mode or "graceful"
    if mode not in MODES:
        return Outcome(400, {"code": 400, "message": f"mode must be graceful, force or kill, not {mode!r}."})
    if mode != "graceful" and state != "abort":
        return Outcome(400, {"code": 400, "message": f"mode applies to abort only, not to {state}."})
    command = state if state != "abort" else f"abort:{mode}"

    def work():
        runs = context_runs(project_name, context)
        project = runs[0].project
        if stage:
            runs = [r for r in runs if r.stage == stage]
            if not runs:
                raise Refused(404, f"Context {context} has no sequence in stage '{stage}'.")
        before = context_state(runs)
        handler = {"pause": _pause, "resume": _resume, "abort": _abort}[state]
        changed = handler(runs, mode=mode, suspend_running=suspend_running, reason=reason, actor=actor,
                          command=command)
        if not changed:
            held = [r for r in runs if r.frozen_by] if command == "resume" else []
            hint = "".join(f" Its {r.name} in {r.stage} holds under the freeze window '{r.frozen_by}': it goes on "
                           "when the window ends, or when somebody lets it through." for r in held)
            raise Refused(409, machine.refusal(command, f"context {context}", before, whole=True) + hint,
                          state=before, sequenceExecutions=summary(runs))
        # A pause changes only the rows in hand. An abort or a resume into the queue may start a sequence
        # through a lane release, on another copy of the same row: read them again then.
        if state == "abort" or any(run.state == SE.WAITING for run in changed):
            for run in runs:
                run.refresh_from_db()
        after = context_state(runs)
        announce(project.name, context)
        body = {"keptnContext": context, "state": after, "previousState": before,
                "sequenceExecutions": summary(runs)}
        if command == "abort:force":  # a job an executor runs is not stopped by force: say where it may go on
            left = [task_moves.still_running(task, context) for run in changed
                    for task in run.task_executions.killable_abandoned()]
            if left:
                body["warning"] = " ".join(left)
        first = changed[0]
        return Outcome(200, body), {"run": first, "before": before, "after": after}

    return run_command(command, actor, idempotency_key, reason, work,
                {"project": project_name, "context": context, "stage": stage or "", "mode": mode,
                 "suspendRunning": suspend_running})


def retrigger_sequence(project_name: str, context: str, *, actor: Actor, stage: str = "", sequence: str = "",
                       new_context: bool = False, reason: str = "", idempotency_key: str = "") -> Outcome:
    """POST .../sequence/{project}/{context}/retrigger: run an ended sequence of a stage again, with the same
    input, in the same context (or in a new one: `new_context`). The latest execution of `sequence` (or of
    any sequence) in `stage` is the one run again."""
    if not stage:
        return Outcome(400, {"code": 400, "message": "stage is required: the stage whose sequence runs again."})

    def work():
        runs = context_runs(project_name, context)
        found = [r for r in runs if r.stage == stage and (not sequence or r.name == sequence)]
        if not found:
            what = f"sequence '{sequence}'" if sequence else "sequence"
            raise Refused(404, f"Context {context} has no {what} in stage '{stage}'.")
        run = found[-1]
        if not machine.run_allows("retrigger", run.state):
            raise Refused(409, machine.refusal("retrigger", f"Sequence '{run.name}' in stage '{run.stage}'",
                                                run.state) + " Abort it first, or wait for it to end.",
                           state=run.state)
        try:
            new = reruns.rerun(run, new_context=new_context, sent_by=actor.name)
        except reruns.RerunError as exc:
            raise Refused(exc.code, exc.message) from None
        body = {"keptnContext": new.context, "executionId": str(new.execution_id), "stage": new.stage,
                "sequence": new.name, "service": new.service, "state": new.state,
                "rerunOf": {"keptnContext": run.context, "executionId": str(run.execution_id)}}
        return Outcome(201, body), {"run": run, "before": run.state, "after": new.state}

    return run_command("retrigger", actor, idempotency_key, reason, work,
                {"project": project_name, "context": context, "stage": stage, "sequence": sequence,
                 "newContext": new_context})


def context_runs(project_name: str, context: str) -> list:
    """The context's sequence executions, locked, or 404 naming what does not exist."""
    runs = _runs_of(project_name, context)
    if not runs:
        if not Project.objects.filter(name=project_name).exists():
            raise Refused(404, f"Project '{project_name}' does not exist.")
        raise Refused(404, f"Project '{project_name}' has no sequence with context {context}.")
    return runs


_runs_of = Prepared(lambda project, context: _locked(SE.objects.filter(project__name=project, context=context))
                    .select_related("project").order_by("id"), str, str)


def _pause(runs, *, suspend_running, **_):
    changed = []
    for run in runs:
        if not machine.run_allows("pause", run.state):
            continue
        run.state_before_pause = enter(run, "pause")
        save(run, ["state", "state_before_pause", "updated_at"])
        observe.transition("sequence.paused", run)
        if suspend_running:
            run.task_executions.filter(state__in=TE.OPEN).update(suspend_requested=True)
        changed.append(run)
    return changed


def _resume(runs, **_):
    changed = []
    for run in runs:
        if not machine.run_allows("resume", run.state, frozen=run.frozen()):
            continue
        previous = run.state_before_pause or SE.STARTED
        enter(run, "resume", previous)
        run.state_before_pause = ""
        save(run, ["state", "state_before_pause", "updated_at"])
        observe.transition("sequence.resumed", run)
        tasks = task_moves.tasks_of(run.id)
        for task in tasks:
            task.sequence_execution = run
            if task.suspend_requested:
                task.suspend_requested = False
                save(task, ["suspend_requested"])
        changed.append(run)
        if previous == SE.WAITING:
            flow.release_lane(run.project, run.stage, run.service, thawed=True)  # it may be first in a free lane
            continue
        flow.go_on(run, tasks)
    return changed


def _abort(runs, *, mode, reason, actor, command, **_):
    """The queued ones first: a holder's abort releases its lane, which must not start a sequence of this very
    context (a re-run waits behind its own context) that is about to be aborted too."""
    message = f"Aborted ({mode}) by {actor.name}" + (f": {reason}" if reason else ".")
    now = timezone.now()
    queued_first = sorted(runs, key=lambda r: SE.WAITING not in (r.state, r.state_before_pause))
    return [run for run in queued_first if command in run.commands() and flow.abort_run(run, mode, message, now)]


# --- tasks -----------------------------------------------------------------------------------


def task_work(triggered_id: str, command: str):
    task = locks.lock_task(triggered_id)
    if task is None:
        raise Refused(404, f"No task was triggered with id {triggered_id}.")
    run = task.sequence_execution
    point = run.retry_point() if command == "retry" else None
    failed_here = point is not None and point.id == task.id
    if command == "retry" and not failed_here:
        why = (f"its sequence is {run.state}; only one that failed or timed out is retried"
               if not machine.failed_at_its_end(run.state, run.result)
               else f"its sequence was re-run ({run.reruns.order_by('id').first().context}); go on there"
               if point is None else f"its sequence failed at task '{point.name}' ({point.triggered_id}), not here")
        raise Refused(409, f"Task '{task.name}' cannot be retried: {why}.", state=run.state)
    if command == "retry" and task.state == TE.KILLING:
        raise Refused(409, f"Task '{task.name}' cannot be retried yet: its processes are being killed. Retry it "
                           "once an executor confirms the kill, or once it is taken as killed.", state=task.state)
    if not machine.task_allows(command, task.state, run.state, task.name, failed_here):
        if task.state in TE.OPEN and run.state in machine.COMMANDS[command].run_states:
            hint = ("it waits for a decision: approve or decline it" if task.name == "approval"
                    and run.state == SE.WAITING_FOR_APPROVAL else "it does not wait for an approval")
            raise Refused(409, f"Task '{task.name}' cannot be {machine.COMMANDS[command].done}: {hint}.",
                           state=run.state)
        state = task.state if task.state not in TE.OPEN else f"{task.state} in a sequence that is {run.state}"
        raise Refused(409, machine.refusal(command, f"Task '{task.name}'", state), state=task.state)
    return task, run


def task_body(task, run) -> dict:
    return {"triggeredId": task.triggered_id, "task": task.name, "state": task.state, "result": task.result,
            "status": task.status, "keptnContext": run.context, "sequenceState": run.state}


def task_audit(task, run, before) -> dict:
    return {"run": run, "task": task, "before": before, "after": task.state}


def finish_task(triggered_id: str, result: str, status: str, reason: str, *, actor: Actor,
                idempotency_key: str = "") -> Outcome:
    """Force-finish: an operator ends a task with a chosen result and status; late events are fenced off."""
    if result not in ev.RESULTS:
        return Outcome(400, {"code": 400, "message": f"result must be pass, warning or fail, not {result!r}."})
    if status not in ev.STATUSES:
        return Outcome(400, {"code": 400, "message": f"status must be one of {', '.join(ev.STATUSES)}."})
    if not (reason or "").strip():
        return Outcome(400, {"code": 400, "message": "reason is required: say why the task is finished by hand."})

    def work():
        task, run = task_work(triggered_id, "finish")
        before = task.state
        now = timezone.now()
        task.finished_by = actor.name
        message = f"Finished by {actor.name} ({result}, {status}): {reason}"
        flow.finish_task(task, run, "finish", TE.FINISHED, result, status, message, now)
        announce(run.project.name, run.context)
        run.refresh_from_db()
        return Outcome(200, task_body(task, run)), task_audit(task, run, before)

    return run_command("finish", actor, idempotency_key, reason, work,
                {"task": triggered_id, "result": result, "status": status})


def kill_task(triggered_id: str, reason: str, *, actor: Actor, idempotency_key: str = "") -> Outcome:
    """Kill one task: it ends failed now (the sequence goes on as for a failure); executors are asked to kill."""

    def work():
        task, run = task_work(triggered_id, "kill")
        before = task.state
        now = timezone.now()
        task.finished_by = actor.name
        task.kill_requested_at = now
        state = TE.KILLING if task.executors else TE.KILLED
        message = f"Killed by {actor.name}" + (f": {reason}" if reason else ".")
        flow.finish_task(task, run, "kill", state, "fail", "aborted", message, now)
        announce(run.project.name, run.context)
        run.refresh_from_db()
        return Outcome(200, task_body(task, run)), task_audit(task, run, before)

    return run_command("kill", actor, idempotency_key, reason, work, {"task": triggered_id})


def confirm_killed(triggered_id: str, *, actor: Actor) -> Outcome:
    """An executor confirms it terminated a task's processes: killing -> killed."""

    def work():
        task = locks.lock_task(triggered_id)
        if task is None:
            raise Refused(404, f"No task was triggered with id {triggered_id}.")
        run = task.sequence_execution
        if task.state != TE.KILLING:
            raise Refused(409, f"Task '{task.name}' is {task.state}; only a task being killed is confirmed "
                                "killed.", state=task.state)
        task_moves.confirm_killed(task)
        announce(run.project.name, run.context)
        return Outcome(200, task_body(task, run)), task_audit(task, run, TE.KILLING)

    return run_command("killed", actor, "", "", work, {"task": triggered_id})


def heartbeat(triggered_id: str, source: str) -> Outcome:
    """An executor says it is still working on a task (as a `.status.changed` event does)."""
    with write_transaction():
        task = locks.lock_task(triggered_id)
        if task is None:
            return Outcome(404, {"code": 404, "message": f"No task was triggered with id {triggered_id}."})
        if task.state not in TE.OPEN:  # the answer still says what the executor is asked to do (kill)
            return Outcome(409, {"code": 409, "message": f"Task '{task.name}' is {task.state}.",
                                 **task_requests(task)})
        deadlines.heard_from(task, task.sequence_execution, timezone.now())
        return Outcome(200, task_requests(task))


def task_requests(task) -> dict:
    """What an executor running a task needs to know: cancel, kill, suspend requests."""
    return {
        "triggeredId": task.triggered_id,
        "task": task.name,
        "state": task.state,
        "cancelRequested": task.cancel_requested_at is not None,
        "killRequested": task.kill_requested_at is not None and task.state == TE.KILLING,
        "suspendRequested": task.suspend_requested,
        "killGraceSeconds": task.kill_grace,
    }
