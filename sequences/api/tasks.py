"""The job executor's side of a task: claim it, stream its log, report its facts; read or download the log."""

import json

from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from sequences.api.auth import OPERATE, require
from sequences.api.params import task_or_404
from sequences.api.schemas import INTEGER, OBJECT, OPT_STRING, RESPONSES_KEY, STRING, answers, obj
from sequences.models import TaskExecution, TaskLog
from sequences.transitions import claims as executors

router = Router(tags=["Tasks"])

CLAIM = obj({"triggeredId": STRING, "task": STRING, "state": STRING, "claimedBy": STRING, "keptnContext": STRING},
            {"heartbeatTimeoutSeconds": {"type": ["number", "null"]}})
LOG_INFO = obj({"totalBytes": INTEGER, "keptBytes": INTEGER, "cutBytes": INTEGER})
FACTS = obj({"triggeredId": STRING, "facts": OBJECT})
FACTS_BODY = {"type": "object", "properties": {
    "machine": STRING, "platform": STRING, "pid": INTEGER, "exitCode": INTEGER, "signal": STRING,
    "computationSeconds": {"type": "number"}, "cpuSeconds": {"type": "number"}, "outputBytes": INTEGER,
    "outputFiles": {"type": "array", "items": obj({"name": STRING, "size": INTEGER})}}}


class ClaimBody(Schema):
    executor: str = Field(min_length=1, max_length=200, description="The executor's name (the events' source)")
    killGrace: float | None = Field(None, ge=0, le=3600, description="Seconds from SIGTERM to SIGKILL")
    machine: dict = Field(default_factory=dict, description="{machine, platform, pid}")


class LogBody(Schema):
    text: str  # its length is checked by executors.append_log (413)


def _answer(answer: executors.Answer):
    return Status(answer.code, answer.body)


@router.post("/task/{triggeredId}/claim", **answers({200: CLAIM}, 403, 404, 409),
             summary="A job executor claims an open task (one claim wins); recorded as its .started")
def claim(request, triggeredId: str, payload: ClaimBody):
    require(request, OPERATE)
    return _answer(executors.claim(triggeredId, payload.executor, kill_grace=payload.killGrace,
                                   machine=payload.machine, user=request.user))


@router.post("/task/{triggeredId}/log", **answers({200: LOG_INFO}, 403, 404, 409, 413),
             summary="Append output of the task's job (its first 16 KiB and last 240 KiB are kept)")
def append_log(request, triggeredId: str, payload: LogBody):
    require(request, OPERATE)
    return _answer(executors.append_log(triggeredId, payload.text, request.user))


@router.post("/task/{triggeredId}/facts", **answers({200: FACTS}, 403, 404, 409, 413, extra={"requestBody": {
                 "required": True, "content": {"application/json": {"schema": FACTS_BODY}}}}),
             summary="Report task facts: machine, platform, exit code, computation time, output files")
def report_facts(request, triggeredId: str):
    require(request, OPERATE)
    if len(request.body) > executors.MAX_CHUNK_CHARS:
        raise HttpError(413, f"Facts are at most {executors.MAX_CHUNK_CHARS} bytes.")
    try:
        facts = json.loads(request.body or b"{}", parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise HttpError(400, "The body is not valid JSON (NaN and Infinity are not JSON numbers).") from None
    return _answer(executors.report_facts(triggeredId, facts, request.user))


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


LOG_ANSWERS = answers({}, 404)
LOG_ANSWERS["response"][200] = None
LOG_ANSWERS["openapi_extra"][RESPONSES_KEY][200] = {
    "description": "The log", "content": {"text/plain": {"schema": {"type": "string"}}}}


@router.get("/task/{triggeredId}/log", summary="The task's log as text (its head and tail, if it was cut)", **LOG_ANSWERS)
def download_log(request, triggeredId: str, download: bool = False):
    return executors.log_response(task_or_404(triggeredId), download)


def task_facts_json(task: TaskExecution) -> dict:
    entry = TaskLog.objects.filter(task=task).first()
    return {"claimedBy": task.claimed_by or None, "facts": task.facts, "log": executors.log_info(entry),
            "logUrl": f"/api/controlPlane/v1/task/{task.triggered_id}/log"}


TASK_FACTS = {"claimedBy": OPT_STRING, "facts": OBJECT, "log": LOG_INFO, "logUrl": STRING}
