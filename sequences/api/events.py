"""POST /api/v1/event (single and CloudEvents batch) and GET /api/v1/event (the event log)."""

import json

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.request import RawPostDataException
from ninja import Router, Status
from ninja.errors import HttpError

from sequences.api.auth import OPERATE, actor, require
from sequences.api.params import PAGE_KEY, PAGE_SIZE, moment, page_key, page_size
from sequences.api.schemas import BATCH_ANSWER, EVENT, RECEIPT, answers, page
from sequences.models import Event
from sequences.rules.cloudevents import MAX_DEPTH, MAX_EVENT_BYTES
from sequences.transitions import arrivals as intake

router = Router(tags=["Events"])

EVENT_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "specversion": {"type": "string", "example": "1.0"},
        "id": {"type": "string", "description": "Unique id; a repeated id is not applied twice"},
        "source": {"type": "string", "example": "my-executor"},
        "type": {"type": "string", "example": "sh.keptn.event.dev.delivery.triggered"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "example": "application/json"},
        "shkeptncontext": {"type": "string", "description": "The context (UUID); new if absent"},
        "triggeredid": {"type": "string", "description": "For task events: the id of the task's .triggered"},
        "gitcommitid": {"type": "string"},
        "shkeptnspecversion": {"type": "string"},
        "data": {
            "type": "object",
            "example": {
                "project": "sockshop", "stage": "dev", "service": "carts",
                "configurationChange": {"values": {"image": "docker.io/keptnexamples/carts:0.11.1"}},
            },
        },
    },
}


JSON_TYPES = ("application/json", "application/cloudevents+json", "text/plain", "")
BATCH_TYPE = "application/cloudevents-batch+json"


def _body(request: HttpRequest, limit: int) -> bytes:
    try:
        return request.body
    except (RequestDataTooBig, RawPostDataException):
        raise HttpError(413, f"The request is too large; at most {limit} bytes are accepted.") from None


def _parse(body: bytes, limit: int):
    if len(body) > limit:
        raise HttpError(413, f"The request is {len(body)} bytes; at most {limit} bytes are accepted.")
    try:
        return json.loads(body or b"null")
    except RecursionError:
        raise HttpError(400, f"The body nests JSON too deeply; an event may nest at most {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "The body is not valid JSON.") from None


@router.post(
    "/event",
    summary="Send an event (a sequence's .triggered, or a task's .started/.status.changed/.finished)",
    **answers({202: {"anyOf": [RECEIPT, BATCH_ANSWER]}, 200: RECEIPT, 207: BATCH_ANSWER},
              403, 404, 409, 413, 415, extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": EVENT_SCHEMA},
                "application/cloudevents-batch+json": {"schema": {
                    "type": "array", "items": EVENT_SCHEMA,
                    "description": f"At most {intake.MAX_BATCH_EVENTS} events and {intake.MAX_BATCH_BYTES} bytes "
                                   "(413 beyond)"}},
            },
        }
    }),
)
def post_event(request):
    require(request, OPERATE)
    content_type = (request.content_type or "").lower()
    limit = intake.MAX_BATCH_BYTES if content_type == BATCH_TYPE else MAX_EVENT_BYTES
    status, answer = receive(content_type, _body(request, limit), actor(request))
    return Status(status, answer)


def receive(content_type: str, body: bytes, sent_by: str) -> tuple[int, dict | list]:
    """The answer (status, JSON) to a POST of one event or a batch; HttpError for a request it cannot take.
    `sent_by`: who sent it (the token's user and name), kept with a sequence's trigger.

    Shared by this view and the intake's own ASGI path (bridge/intake.py)."""
    if content_type == BATCH_TYPE:
        events = _parse(body, intake.MAX_BATCH_BYTES)
        if not isinstance(events, list):
            raise HttpError(400, "A CloudEvents batch must be a JSON array of events.")
        if len(events) > intake.MAX_BATCH_EVENTS:
            raise HttpError(413, f"The batch has {len(events)} events; at most {intake.MAX_BATCH_EVENTS} are "
                                 "accepted in one request. Split it.")
        receipts = intake.receive_batch(events, sent_by=sent_by)
        answers = [{"status": r.code, **r.as_json()} for r in receipts]
        return (202 if all(r.code < 300 for r in receipts) else 207), answers
    if content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise HttpError(415, f"Content-Type {content_type!r} is not accepted: send application/json (or "
                             f"application/cloudevents+json) for one event, {BATCH_TYPE} for a batch.")
    raw = _parse(body, MAX_EVENT_BYTES)
    if isinstance(raw, list):
        raise HttpError(400, "Send one event as a JSON object, or a batch with Content-Type "
                             "application/cloudevents-batch+json.")
    receipt = intake.receive_event(raw, sent_by=sent_by)
    return receipt.code, receipt.as_json()


@router.get("/event", summary="Read the event log, oldest first", **answers({200: page("events", EVENT)}))
def get_events(
    request,
    keptnContext: str | None = None,
    type: str | None = None,
    project: str | None = None,
    stage: str | None = None,
    service: str | None = None,
    source: str | None = None,
    eventID: str | None = None,
    fromTime: str | None = None,
    beforeTime: str | None = None,
    pageSize: int | None = PAGE_SIZE,
    nextPageKey: str | None = PAGE_KEY,
):
    return event_page(keptnContext=keptnContext, type=type, project=project, stage=stage, service=service,
                      source=source, eventID=eventID, fromTime=fromTime, beforeTime=beforeTime, pageSize=pageSize,
                      nextPageKey=nextPageKey)


def event_page(keptnContext=None, type=None, project=None, stage=None, service=None, source=None, eventID=None,
               fromTime=None, beforeTime=None, pageSize=None, nextPageKey=None) -> dict:
    """A page of the event log, oldest first (also Keptn's datastore path, /api/mongodb-datastore/event)."""
    size = page_size(pageSize)
    events = Event.objects.all()
    for field, value in (("context", keptnContext), ("type", type), ("project", project), ("stage", stage),
                         ("service", service), ("source", source), ("event_id", eventID)):
        if value:
            events = events.filter(**{field: value})
    since, before = moment(fromTime, "fromTime"), moment(beforeTime, "beforeTime")
    if since is not None:
        events = events.filter(time__gte=since)
    if before is not None:
        events = events.filter(time__lt=before)
    total = events.count()
    after = page_key(nextPageKey)
    if after:
        events = events.filter(id__gt=after)
    page = list(events.order_by("id")[: size + 1])
    more = len(page) > size
    page = page[:size]
    return {
        "events": [e.payload for e in page],
        "nextPageKey": str(page[-1].id) if more else "",
        "pageSize": len(page),
        "totalCount": total,
    }

