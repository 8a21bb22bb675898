"""Control: pause / resume / abort a context, force-finish / kill / approve a task, executor requests."""

from django.shortcuts import get_object_or_404
from ninja import Header, Router, Schema, Status

from .. import control
from ..models import ControlAction, Project, TaskExecution
from .auth import OPERATE, actor, require

router = Router(tags=["Control"])
ANSWERS = {200: dict, 400: dict, 403: dict, 404: dict, 409: dict}


class ControlCommand(Schema):
    state: str
    stage: str | None = None
    mode: str | None = None
    suspendRunning: bool = False
    reason: str = ""


class FinishCommand(Schema):
    result: str
    status: str = "succeeded"
    reason: str


class ReasonBody(Schema):
    reason: str = ""


def _actor(request, source_header: str | None) -> control.Actor:
    source = source_header if source_header in ("api", "cli") else "api"
    return control.Actor(actor(request), source)


def _answer(outcome: control.Outcome):
    return Status(outcome.code, outcome.body)


@router.post("/sequence/{project}/{keptnContext}/control", response=ANSWERS,
             summary="Pause, resume or abort (graceful, force, kill) a sequence context, or one stage of it")
def control_sequence(request, project: str, keptnContext: str, payload: ControlCommand,
                     idempotency_key: str = Header("", alias="Idempotency-Key"),
                     source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.control_sequence(
        project, keptnContext, payload.state, actor=_actor(request, source), stage=payload.stage,
        mode=payload.mode, suspend_running=payload.suspendRunning, reason=payload.reason,
        idempotency_key=idempotency_key))


@router.get("/sequence/{project}/{keptnContext}/audit", response={200: dict, 404: dict},
            summary="The audit trail of a context: every control command, who, from where, why")
def audit(request, project: str, keptnContext: str):
    get_object_or_404(Project, name=project)
    actions = ControlAction.objects.filter(project=project, context=keptnContext).select_related("task_execution")
    return {"keptnContext": keptnContext, "actions": [audit_json(a) for a in actions]}


def audit_json(action: ControlAction) -> dict:
    return {
        "command": action.command, "actor": action.actor, "source": action.source, "reason": action.reason,
        "time": action.created_at.isoformat(), "stateBefore": action.state_before, "stateAfter": action.state_after,
        "idempotencyKey": action.idempotency_key or None,
        "task": action.task_execution.name if action.task_execution else None,
    }


@router.get("/task/{triggeredId}", response={200: dict, 404: dict},
            summary="A task's state and what its executors are asked to do (cancel, kill, suspend)")
def task(request, triggeredId: str):
    found = get_object_or_404(TaskExecution, triggered_id=triggeredId)
    return {**control.task_requests(found), "result": found.result, "status": found.status,
            "message": found.message, "finishedBy": found.finished_by or None}


@router.post("/task/{triggeredId}/finish", response=ANSWERS,
             summary="Force-finish a task with a result, a status and a reason; later executor events are fenced off")
def finish(request, triggeredId: str, payload: FinishCommand,
           idempotency_key: str = Header("", alias="Idempotency-Key"),
           source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.finish_task(triggeredId, payload.result, payload.status, payload.reason,
                                       actor=_actor(request, source), idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/kill", response=ANSWERS,
             summary="Kill a task: it ends failed now and its executors are asked to terminate it")
def kill(request, triggeredId: str, payload: ReasonBody,
         idempotency_key: str = Header("", alias="Idempotency-Key"),
         source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.kill_task(triggeredId, payload.reason, actor=_actor(request, source),
                                     idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/approve", response=ANSWERS, summary="Approve a manual approval task")
def approve(request, triggeredId: str, payload: ReasonBody,
            idempotency_key: str = Header("", alias="Idempotency-Key"),
            source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.decide_approval(triggeredId, True, payload.reason, actor=_actor(request, source),
                                           idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/decline", response=ANSWERS,
             summary="Decline a manual approval task (reason required); the sequence fails")
def decline(request, triggeredId: str, payload: ReasonBody,
            idempotency_key: str = Header("", alias="Idempotency-Key"),
            source: str | None = Header(None, alias="X-Bosun-Source")):
    require(request, OPERATE)
    return _answer(control.decide_approval(triggeredId, False, payload.reason, actor=_actor(request, source),
                                           idempotency_key=idempotency_key))


@router.post("/task/{triggeredId}/heartbeat", response=ANSWERS,
             summary="An executor's heartbeat; the answer carries cancel / kill / suspend requests")
def heartbeat(request, triggeredId: str):
    require(request, OPERATE)
    return _answer(control.heartbeat(triggeredId, actor(request)))


@router.post("/task/{triggeredId}/killed", response=ANSWERS,
             summary="An executor confirms it terminated the task's processes (killing -> killed)")
def killed(request, triggeredId: str):
    require(request, OPERATE)
    return _answer(control.confirm_killed(triggeredId, actor=control.Actor(actor(request), "api")))
