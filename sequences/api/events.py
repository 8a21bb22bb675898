"""POST /api/v1/event (single and CloudEvents batch) and GET /api/v1/event (the event log)."""

import json

from django.http import HttpRequest
from django.http.request import RawPostDataException
from django.core.exceptions import RequestDataTooBig
from django.utils.dateparse import parse_datetime
from ninja import Router, Status
from ninja.errors import HttpError

from .. import intake
from ..events import MAX_EVENT_BYTES
from ..models import Event
from .auth import OPERATE, require

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


def _body(request: HttpRequest):
    try:
        body = request.body
    except (RequestDataTooBig, RawPostDataException):
        raise HttpError(413, "The request is too large.") from None
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "The body is not valid JSON.") from None


@router.post(
    "/event",
    summary="Send an event (a sequence's .triggered, or a task's .started/.status.changed/.finished)",
    response={202: dict | list, 200: dict, 207: list, 400: dict, 403: dict, 404: dict, 409: dict, 413: dict},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": EVENT_SCHEMA},
                "application/cloudevents-batch+json": {"schema": {"type": "array", "items": EVENT_SCHEMA}},
            },
        }
    },
)
def post_event(request):
    require(request, OPERATE)
    content_type = request.content_type or ""
    if content_type == "application/cloudevents-batch+json":
        events = _body(request)
        if not isinstance(events, list):
            raise HttpError(400, "A CloudEvents batch must be a JSON array of events.")
        receipts = intake.receive_batch(events)
        answers = [{"status": r.code, **r.as_json()} for r in receipts]
        return Status(202 if all(r.code < 300 for r in receipts) else 207, answers)
    if len(request.body) > MAX_EVENT_BYTES:
        raise HttpError(413, f"The event is {len(request.body)} bytes; at most {MAX_EVENT_BYTES} bytes are accepted.")
    raw = _body(request)
    if isinstance(raw, list):
        raise HttpError(400, "Send one event as a JSON object, or a batch with Content-Type "
                             "application/cloudevents-batch+json.")
    receipt = intake.receive_event(raw)
    return Status(receipt.code, receipt.as_json())


def _page_size(value: int | None, default=20, maximum=100) -> int:
    if value is None:
        return default
    if value < 1 or value > maximum:
        raise HttpError(400, f"pageSize must be between 1 and {maximum}.")
    return value


@router.get("/event", summary="Read the event log, oldest first", response={200: dict, 400: dict})
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
    pageSize: int | None = None,
    nextPageKey: str | None = None,
):
    size = _page_size(pageSize)
    events = Event.objects.all()
    for field, value in (("context", keptnContext), ("type", type), ("project", project), ("stage", stage),
                         ("service", service), ("source", source), ("event_id", eventID)):
        if value:
            events = events.filter(**{field: value})
    if fromTime:
        moment = parse_datetime(fromTime)
        if moment is None:
            raise HttpError(400, f"fromTime {fromTime!r} is not an ISO 8601 time.")
        events = events.filter(time__gte=moment)
    total = events.count()
    if nextPageKey:
        if not nextPageKey.isdigit():
            raise HttpError(400, f"nextPageKey {nextPageKey!r} is not one this API gave out.")
        events = events.filter(id__gt=int(nextPageKey))
    page = list(events.order_by("id")[: size + 1])
    more = len(page) > size
    page = page[:size]
    return {
        "events": [e.payload for e in page],
        "nextPageKey": str(page[-1].id) if more else "",
        "pageSize": len(page),
        "totalCount": total,
    }
