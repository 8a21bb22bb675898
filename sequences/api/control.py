"""Control: pause / resume / abort a context, force-finish / kill / approve a task, executor requests."""

from typing import Literal

from ninja import Field, Header, Router, Schema, Status

from sequences.api.auth import OPERATE, actor, require
from sequences.api.params import project_or_404, task_or_404
from sequences.api.schemas import (AUDIT, CONTROL_ANSWER, RETRIGGER_ANSWER, RETRY_ANSWER, TASK, TASK_ANSWER,
                                   TASK_REQUESTS, answers)
from sequences.api.tasks import task_facts_json
from sequences.models import ControlAction, TaskExecution
from sequences.rules.cloudevents import iso_or_none
from sequences.transitions import commands as control
from sequences.transitions import decisions, reopen

router = Router(tags=["Control"])
TASK_ANSWERS = answers({200: TASK_ANSWER}, 403, 404, 409)
REASON = Field("", max_length=control.MAX_REASON, description="Why (kept in the audit trail)")


class ControlCommand(Schema):
    state: Literal["pause", "resume", "abort"]
    stage: str | None = Field(None, max_length=100, description="Empty or absent: every stage of the context "
                              "(as Keptn's clients send it)")
    mode: Literal["graceful", "force", "kill"] | None = None
    suspendRunning: bool = False
    reason: str = REASON


class RetriggerCommand(Schema):
    stage: str = Field(min_length=1, max_length=100, description="The stage whose sequence runs again")
    sequence: str = Field("", max_length=100, description="Which sequence of the stage (empty: the latest)")
    newContext: bool = Field(False, description="Run it in a new context (a whole delivery from its first stage)")
    reason: str = REASON


class FinishCommand(Schema):
    result: Literal["pass", "warning", "fail"]
    status: Literal["succeeded", "errored", "aborted", "unknown"] = "succeeded"
    reason: str = Field(min_length=1, max_length=control.MAX_REASON, description="Required: why it is finished by hand")


class ReasonBody(Schema):
    reason: str = REASON


def _actor(request, source_header: str | None) -> control.Actor:
    return command_actor(actor(request), source_header)


def command_actor(name: str, source_header: str | None) -> control.Actor:
    """Who gave a command through the API: the user and token, from the CLI when its header says so."""
    return control.Actor(name, source_header if source_header in ("api", "cli") else "api")


def _answer(outcome: control.Outcome):
    return Status(outcome.code, outcome.body)


@router.post("/sequence/{project}/{keptnContext}/control", **answers({200: CONTROL_ANSWER}, 403, 404, 409),
             summary="Pause, resume or abort (graceful, force, kill) a sequence context, or one stage of it")
def control_sequence(request, project: str, keptnContext: str, payload: ControlCommand,
                     idempotency_key: str = Header("", alias="Idempotency-Key"),
                     source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control_command(project, keptnContext, payload, _actor(request, source), idempotency_key))


def control_command(project: str, context: str, payload: ControlCommand, who: control.Actor,
                    idempotency_key: str) -> control.Outcome:
    """Shared by the view above and the API's own ASGI path (bridge/intake.py)."""
    return control.control_sequence(
        project, context, payload.state, actor=who, stage=payload.stage, mode=payload.mode,
        suspend_running=payload.suspendRunning, reason=payload.reason, idempotency_key=idempotency_key)


@router.post("/sequence/{project}/{keptnContext}/retrigger", **answers({201: RETRIGGER_ANSWER}, 403, 404, 409),
             summary="Run an ended sequence of a stage again, with the same input (same context, or a new one)")
def retrigger_sequence(request, project: str, keptnContext: str, payload: RetriggerCommand,
                       idempotency_key: str = Header("", alias="Idempotency-Key"),
                       source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.retrigger_sequence(
        project, keptnContext, actor=_actor(request, source), stage=payload.stage, sequence=payload.sequence,
        new_context=payload.newContext, reason=payload.reason, idempotency_key=idempotency_key))


@router.get("/sequence/{project}/{keptnContext}/audit", **answers({200: AUDIT}, 404),
            summary="The audit trail of a context: every control command, who, from where, why")
def audit(request, project: str, keptnContext: str):
    project_or_404(project)
    actions = ControlAction.objects.filter(project=project, context=keptnContext).select_related("task_execution")
    return {"keptnContext": keptnContext, "actions": [audit_json(a) for a in actions]}


def audit_json(action: ControlAction) -> dict:
    return {
        "command": action.command, "actor": action.actor, "source": action.source, "reason": action.reason,
        "time": action.created_at.isoformat(), "stateBefore": action.state_before, "stateAfter": action.state_after,
        "idempotencyKey": action.idempotency_key or None,
        "task": action.task_execution.name if action.task_execution else None,
    }


@router.get("/task/{triggeredId}", **answers({200: TASK}, 404),
            summary="A task: its state, what its executors are asked to do (cancel, kill, suspend) and its facts")
def task(request, triggeredId: str):
    found = task_or_404(triggeredId, TaskExecution.objects.select_related("sequence_execution"))
    run = found.sequence_execution
    return {**control.task_requests(found), "result": found.result, "status": found.status,
            "message": found.message, "finishedBy": found.finished_by or None, "keptnContext": run.context,
            "stage": run.stage, "service": run.service, "triggeredAt": iso_or_none(found.triggered_at),
            "startedAt": iso_or_none(found.started_at), "finishedAt": iso_or_none(found.finished_at),
            **task_facts_json(found)}


@router.post("/task/{triggeredId}/finish", **TASK_ANSWERS,
             summary="Force-finish a task with a result, a status and a reason; later executor events are fenced off")
def finish(request, triggeredId: str, payload: FinishCommand,
           idempotency_key: str = Header("", alias="Idempotency-Key"),
           source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.finish_task(triggeredId, payload.result, payload.status, payload.reason,
                                       actor=_actor(request, source), idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/kill", **TASK_ANSWERS,
             summary="Kill a task: it ends failed now and its executors are asked to terminate it")
def kill(request, triggeredId: str, payload: ReasonBody,
         idempotency_key: str = Header("", alias="Idempotency-Key"),
         source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.kill_task(triggeredId, payload.reason, actor=_actor(request, source),
                                     idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/retry", **answers({200: RETRY_ANSWER}, 403, 404, 409),
             summary="Retry from here: the task an ended sequence failed or timed out at runs again (a new "
                     "attempt), and the sequence goes on from it")
def retry(request, triggeredId: str, payload: ReasonBody,
          idempotency_key: str = Header("", alias="Idempotency-Key"),
          source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(reopen.retry_task(triggeredId, payload.reason, actor=_actor(request, source),
                                     idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/approve", **TASK_ANSWERS, summary="Approve a manual approval task")
def approve(request, triggeredId: str, payload: ReasonBody,
            idempotency_key: str = Header("", alias="Idempotency-Key"),
            source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(decisions.decide_approval(triggeredId, True, payload.reason, actor=_actor(request, source),
                                           idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/decline", **TASK_ANSWERS,
             summary="Decline a manual approval task (reason required); the sequence fails")
def decline(request, triggeredId: str, payload: ReasonBody,
            idempotency_key: str = Header("", alias="Idempotency-Key"),
            source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(decisions.decide_approval(triggeredId, False, payload.reason, actor=_actor(request, source),
                                           idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/heartbeat", **answers({200: TASK_REQUESTS}, 403, 404, 409),
             summary="An executor's heartbeat; the answer carries cancel / kill / suspend requests")
def heartbeat(request, triggeredId: str):
    require(request, OPERATE)
    return _answer(control.heartbeat(triggeredId, actor(request)))


@router.post("/task/{triggeredId}/killed", **TASK_ANSWERS,
             summary="An executor confirms it terminated the task's processes (killing -> killed)")
def killed(request, triggeredId: str):
    require(request, OPERATE)
    return _answer(control.confirm_killed(triggeredId, actor=control.Actor(actor(request), "api")))
