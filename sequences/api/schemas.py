"""The JSON Schemas of the API's answers, as the OpenAPI document declares them.

Endpoints return plain dicts (built in one place each, e.g. execution_json); these schemas say what
those dicts hold, so clients and conformance checks (schemathesis in the suite) can rely on them.
`answers()` turns {status: schema} into the `response=` and `openapi_extra=` arguments of a route.
"""

from sequences.models import SequenceExecution, TaskExecution
from sequences.rules import machine

STRING = {"type": "string"}
OPT_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
OBJECT = {"type": "object"}
OPT_OBJECT = {"type": ["object", "null"]}
TIME = {"type": ["string", "null"], "description": "ISO 8601, UTC"}
SEQUENCE_STATES = [s for s, _ in SequenceExecution.STATES]
TASK_STATES = [s for s, _ in TaskExecution.STATES]
RESULTS = ["pass", "warning", "fail", ""]


def obj(required: dict, optional: dict | None = None, **extra) -> dict:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}, **extra}


def page(key: str, item: dict, integer_key: bool = False) -> dict:
    """A page of `key`. Keptn types nextPageKey by endpoint: a string (events), or an integer that is absent on
    the last page (integer_key: sequence executions)."""
    if integer_key:
        return obj({key: {"type": "array", "items": item}, "pageSize": INTEGER, "totalCount": INTEGER},
                   {"nextPageKey": {"type": "integer", "minimum": 1}})
    return obj({key: {"type": "array", "items": item}, "nextPageKey": STRING, "pageSize": INTEGER,
                "totalCount": INTEGER})


ERROR = obj({"code": INTEGER, "message": STRING},
            description="Keptn's models.Error: the HTTP status and what went wrong and what to do")

EVENT = obj({"id": STRING, "type": STRING},
            {"specversion": STRING, "source": STRING, "time": STRING, "datacontenttype": STRING,
             "shkeptncontext": STRING, "triggeredid": STRING, "gitcommitid": STRING,
             "shkeptnspecversion": STRING, "data": OBJECT},
            description="A CloudEvent as stored in the event log")

RECEIPT = obj({"id": STRING, "keptnContext": OPT_STRING}, {"duplicate": {"type": "boolean"}, "message": STRING})
BATCH_ANSWER = {"type": "array", "items": obj({"status": INTEGER, "id": STRING},
                                               {"keptnContext": OPT_STRING, "code": INTEGER, "message": STRING,
                                                "duplicate": {"type": "boolean"}})}

TASK_EVENT_ROW = obj({"eventType": STRING, "source": STRING, "time": TIME},
                     {"result": OPT_STRING, "status": OPT_STRING, "properties": OPT_OBJECT})
BLOCKER = obj({"keptnContext": STRING, "_id": STRING, "sequence": STRING,
               "state": {"type": "string", "enum": SEQUENCE_STATES}})
QUEUE_POLICIES = [p for p, _ in SequenceExecution.QUEUE_POLICIES]
QUEUE = {"type": ["object", "null"], "properties": {
    "position": {"type": ["integer", "null"], "minimum": 1},
    "blockedBy": {"anyOf": [BLOCKER, {"type": "null"}]},
    "policy": {"type": "string", "enum": QUEUE_POLICIES},
    "description": STRING,
    "skipped": {"type": "integer", "minimum": 0},
    "willBeSkipped": {"type": "boolean"},
    "frozen": {"anyOf": [obj({"until": STRING, "window": STRING, "description": STRING}), {"type": "null"}]},
}}
SUPERSEDED_BY = {"anyOf": [obj({"keptnContext": STRING, "_id": STRING, "sequence": STRING}), {"type": "null"}]}
# What a person is shown (sequences/rules/outcomes.py): a key for scripts, a label for people, e.g.
# {"key": "failed", "label": "Failed (rolled back)"}
OUTCOME = obj({"key": {"type": "string", "enum": ["waiting", "running", "paused", "approval", "aborting",
                                                  "succeeded", "warning", "failed", "aborted", "timedout",
                                                  "superseded"]}, "label": STRING})
SEQUENCE_EXECUTION = obj({
    "_id": STRING,
    "schemaVersion": STRING,
    "scope": obj({"project": STRING, "stage": STRING, "service": STRING, "keptnContext": STRING,
                  "triggeredId": STRING, "eventType": STRING},
                 {"gitcommitid": STRING, "status": STRING, "result": STRING}),
    "sequence": obj({"name": STRING, "tasks": {"type": "array", "items": obj({"name": STRING},
                                                                             {"properties": OPT_OBJECT})}}),
    "status": obj({"state": {"type": "string", "enum": SEQUENCE_STATES},
                   "previousTasks": {"type": "array", "items": obj(
                       {"name": STRING, "triggeredID": STRING, "state": {"type": "string", "enum": TASK_STATES}},
                       {"result": STRING, "status": STRING, "properties": OPT_OBJECT, "finishedBy": OPT_STRING,
                        "attempt": INTEGER})},
                   "currentTask": {"anyOf": [obj({"name": STRING, "triggeredID": STRING,
                                                  "state": {"type": "string", "enum": TASK_STATES}},
                                                 {"events": {"type": "array", "items": TASK_EVENT_ROW},
                                                  "timeouts": OBJECT, "attempt": INTEGER}), {"type": "null"}]}},
                  {"stateBeforePause": STRING, "message": STRING}),
    "inputProperties": OBJECT,
    "triggeredAt": TIME,
}, {"startedAt": TIME, "endedAt": TIME, "queue": QUEUE, "supersededBy": SUPERSEDED_BY, "outcome": OUTCOME,
    # a re-run: the ended execution it runs again, and the re-runs of this one
    "rerunOf": SUPERSEDED_BY, "rerunAs": {"type": "array", "items": SUPERSEDED_BY["anyOf"][0]},
    # the commands sequences/rules/machine.py allows now (pause, resume, abort:graceful, abort:force, abort:kill)
    "commands": {"type": "array", "items": {"type": "string", "enum": list(machine.COMMANDS)}}})

CONTEXT_STATE = obj({"name": STRING, "project": STRING, "service": STRING, "shkeptncontext": STRING,
                     "state": {"type": "string", "enum": SEQUENCE_STATES}, "time": TIME,
                     "stages": {"type": "array", "items": obj(
                         {"name": STRING, "state": {"type": "string", "enum": SEQUENCE_STATES}},
                         {"result": STRING, "image": STRING, "latestEvent": OBJECT, "outcome": OUTCOME})}},
                    {"outcome": OUTCOME})

EVENT_CONTEXT_INFO = obj({"eventId": STRING, "keptnContext": STRING, "time": TIME})
PROJECT = obj({"projectName": STRING, "shipyard": STRING, "stages": {"type": "array", "items": obj(
    {"stageName": STRING, "services": {"type": "array", "items": obj(
        {"serviceName": STRING}, {"creationDate": STRING, "deployedImage": STRING})}},
    {"lastEventContext": EVENT_CONTEXT_INFO})}},
    {"shipyardVersion": STRING, "creationDate": TIME, "lastChangeDate": TIME, "jobs": STRING,
     "warnings": {"type": "array", "items": STRING}, "lastEventContext": EVENT_CONTEXT_INFO})
PROJECTS = page("projects", PROJECT)
JOB = obj({"name": STRING, "task": STRING, "command": {"type": "array", "items": STRING, "minItems": 1},
           "stages": {"type": "array", "items": STRING}, "services": {"type": "array", "items": STRING},
           "workingDir": STRING, "env": {"type": "object", "additionalProperties": STRING},
           "timeout": {"type": ["number", "null"]}, "killGrace": {"type": "number"}})
JOBS_ANSWER = obj({"project": STRING, "jobs": {"type": "array", "items": JOB}})
SERVICE = obj({"serviceName": STRING, "project": STRING})
MESSAGE = obj({"message": STRING})
OPT_TIME = {"type": ["string", "null"]}
FREEZE_WINDOW = obj({
    "name": STRING, "reason": STRING, "stages": {"type": "array", "items": STRING},
    "services": {"type": "array", "items": STRING}, "timeZone": STRING,
    "running": {"type": "string", "enum": ["hold", "finish"]}, "active": {"type": "boolean"},
    "over": {"type": "boolean"}}, {
    "start": OPT_TIME, "end": OPT_TIME, "cron": OPT_STRING, "duration": OPT_STRING, "createdBy": STRING,
    "createdAt": OPT_TIME, "activeUntil": OPT_TIME, "nextStart": OPT_TIME, "nextEnd": OPT_TIME},
    description="A freeze window: one-off (start, end) or recurring (cron, duration, timeZone)")
RETRY_ANSWER = obj({"keptnContext": STRING, "stage": STRING, "task": STRING, "retryOf": STRING,
                    "sequenceState": {"type": "string", "enum": SEQUENCE_STATES}, "previousState": STRING,
                    "triggeredId": OPT_STRING, "attempt": {"type": ["integer", "null"]}, "state": OPT_STRING,
                    "message": STRING},
                   description="A retry from a task: the new attempt (or none yet, while the sequence waits for "
                               "its lane)")
FREEZE_WINDOWS = obj({"windows": {"type": "array", "items": FREEZE_WINDOW}})

SEQUENCE_SUMMARY = obj({"_id": STRING, "stage": STRING, "service": STRING, "sequence": STRING,
                        "state": {"type": "string", "enum": SEQUENCE_STATES}}, {"stateBeforePause": STRING})
CONTROL_ANSWER = obj({"keptnContext": STRING, "state": {"type": "string", "enum": SEQUENCE_STATES},
                      "previousState": {"type": "string", "enum": SEQUENCE_STATES},
                      "sequenceExecutions": {"type": "array", "items": SEQUENCE_SUMMARY}},
                     {"warning": {"type": "string", "description": "After a force abort: a job that may still be "
                                                                   "running, where, and how to kill it"}})
RETRIGGER_ANSWER = obj({"keptnContext": STRING, "executionId": STRING, "stage": STRING, "sequence": STRING,
                        "service": STRING, "state": {"type": "string", "enum": SEQUENCE_STATES},
                        "rerunOf": obj({"keptnContext": STRING, "executionId": STRING})})
AUDIT = obj({"keptnContext": STRING, "actions": {"type": "array", "items": obj(
    {"command": STRING, "actor": STRING, "source": STRING, "time": STRING},
    {"reason": STRING, "stateBefore": STRING, "stateAfter": STRING, "idempotencyKey": OPT_STRING,
     "task": OPT_STRING})}})

TASK_REQUESTS = obj({"triggeredId": STRING, "task": STRING, "state": {"type": "string", "enum": TASK_STATES},
                     "cancelRequested": {"type": "boolean"}, "killRequested": {"type": "boolean"},
                     "suspendRequested": {"type": "boolean"}},
                    {"killGraceSeconds": {"type": ["number", "null"]}})
TASK = {**TASK_REQUESTS, "properties": {**TASK_REQUESTS["properties"], "result": STRING, "status": STRING,
                                        "message": STRING, "finishedBy": OPT_STRING, "keptnContext": STRING,
                                        "stage": STRING, "service": STRING, "triggeredAt": TIME, "startedAt": TIME,
                                        "finishedAt": TIME, "claimedBy": OPT_STRING, "facts": OBJECT,
                                        "log": OBJECT, "logUrl": STRING}}
TASK_ANSWER = obj({"triggeredId": STRING, "task": STRING, "state": {"type": "string", "enum": TASK_STATES},
                   "keptnContext": STRING, "sequenceState": {"type": "string", "enum": SEQUENCE_STATES}},
                  {"result": STRING, "status": STRING})

RESPONSES_KEY = "x-bosun-responses"
ERROR_CODES = {
    400: "Bad request: the message says what is wrong",
    401: "Missing or invalid API token",
    403: "The token's user lacks the permission",
    404: "Not found",
    409: "Does not apply to the current state (the answer carries it)",
    413: "Too large",
    415: "Unsupported content type",
    429: "Too many failed token checks from this address (see Retry-After)",
}


def answers(ok: dict[int, dict], *errors: int, extra: dict | None = None) -> dict:
    """{"response": ..., "openapi_extra": ...} for a route answering `ok` (status -> schema) or `errors`."""
    codes = sorted(set(errors) | {400, 401, 429})
    response = {code: (list if schema.get("type") == "array" else dict | list if "anyOf" in schema else dict)
                for code, schema in ok.items()}
    response.update({code: dict for code in codes})
    documented = {code: {"description": "OK", "content": {"application/json": {"schema": schema}}}
                  for code, schema in ok.items()}
    for code in codes:
        documented[code] = {"description": ERROR_CODES[code], "content": {"application/json": {"schema": ERROR}}}
    documented[429]["headers"] = {"Retry-After": {"schema": INTEGER, "description": "Seconds to wait"}}
    # BosunAPI puts these in place of what django-ninja derives from `response=` (a free-form object).
    openapi_extra = {RESPONSES_KEY: documented, **(extra or {})}
    return {"response": response, "openapi_extra": openapi_extra}
