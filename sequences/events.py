"""CloudEvents in Keptn's dialect: type names, intake validation, payload merge. No ORM here."""

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

PREFIX = "sh.keptn.event."
MAX_EVENT_BYTES = 64 * 1024
STATUSES = ("succeeded", "errored", "aborted", "unknown")
RESULTS = ("pass", "warning", "fail")


class EventError(Exception):
    """An event Bosun will not apply; `code` is the HTTP status to answer with."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class EventType:
    """sh.keptn.event.<stage>.<sequence>.<kind> or sh.keptn.event.<task>.<kind>."""

    kind: str  # triggered | started | status.changed | finished | ...
    task: str | None = None
    stage: str | None = None
    sequence: str | None = None

    @property
    def is_sequence(self) -> bool:
        return self.sequence is not None


def parse_type(event_type: str) -> EventType | None:
    if not isinstance(event_type, str) or not event_type.startswith(PREFIX):
        return None
    rest = event_type.removeprefix(PREFIX)
    if rest.endswith(".status.changed"):
        head, kind = rest.removesuffix(".status.changed"), "status.changed"
    else:
        head, _, kind = rest.rpartition(".")
    parts = head.split(".") if head else []
    if not kind or not parts or not all(parts):
        return None
    if len(parts) == 1:
        return EventType(kind=kind, task=parts[0])
    if len(parts) == 2:
        return EventType(kind=kind, stage=parts[0], sequence=parts[1])
    return None


def sequence_type(stage: str, sequence: str, kind: str) -> str:
    return f"{PREFIX}{stage}.{sequence}.{kind}"


def task_type(task: str, kind: str) -> str:
    return f"{PREFIX}{task}.{kind}"


@dataclass
class IncomingEvent:
    """A client's event that passed the intake rules (what it may send, and its shape)."""

    raw: dict
    id: str
    type: str
    parsed: EventType
    source: str
    context: str | None
    triggered_id: str | None
    data: dict

    @property
    def project(self):
        return self.data.get("project")


def validate_incoming(raw) -> IncomingEvent:
    """Check one client event against DESIGN.md "Events"; raise EventError(4xx) with the reason."""
    if not isinstance(raw, dict):
        raise EventError(400, "An event must be a JSON object (a CloudEvent).")
    size = len(json.dumps(raw, separators=(",", ":")).encode())
    if size > MAX_EVENT_BYTES:
        raise EventError(413, f"The event is {size} bytes; at most {MAX_EVENT_BYTES} bytes are accepted.")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise EventError(400, "The event has no 'type'.")
    parsed = parse_type(event_type)
    if parsed is None:
        raise EventError(
            400,
            f"'{event_type}' is not a Keptn event type: use sh.keptn.event.<stage>.<sequence>.triggered "
            "or sh.keptn.event.<task>.started|status.changed|finished.",
        )
    if parsed.is_sequence and parsed.kind != "triggered":
        raise EventError(
            400,
            f"Clients may only send '.triggered' for a sequence; Bosun itself emits '{event_type}'.",
        )
    if not parsed.is_sequence and parsed.kind not in ("started", "status.changed", "finished"):
        if parsed.kind == "triggered":
            raise EventError(
                400,
                f"Bosun triggers tasks itself; '{event_type}' cannot be sent. Trigger a sequence instead "
                "(sh.keptn.event.<stage>.<sequence>.triggered).",
            )
        raise EventError(400, f"Unknown event kind '{parsed.kind}' in '{event_type}'.")
    data = raw.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EventError(400, "The event's 'data' must be a JSON object.")
    for key in ("id", "source", "shkeptncontext", "triggeredid"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise EventError(400, f"The event's '{key}' must be a string.")
    for key in ("project", "stage", "service"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise EventError(400, f"data.{key} must be a string.")
    if data.get("status") is not None and data.get("status") not in STATUSES:
        raise EventError(400, f"data.status must be one of {', '.join(STATUSES)}, not {data['status']!r}.")
    if data.get("result") is not None and data.get("result") not in RESULTS:
        raise EventError(400, f"data.result must be one of {', '.join(RESULTS)}, not {data['result']!r}.")
    labels = data.get("labels")
    if labels is not None and not isinstance(labels, dict):
        raise EventError(400, "data.labels must be a JSON object of strings.")
    context = raw.get("shkeptncontext") or None
    if context is not None:
        try:
            context = str(uuid.UUID(context))
        except ValueError:
            raise EventError(400, f"shkeptncontext {context!r} is not a UUID.") from None
    if parsed.is_sequence:
        for key in ("project", "stage", "service"):
            if not data.get(key):
                raise EventError(400, f"A sequence's .triggered event needs data.{key}.")
        if data["stage"] != parsed.stage:
            raise EventError(
                400, f"data.stage '{data['stage']}' does not match the stage '{parsed.stage}' in the type."
            )
    else:
        if not raw.get("triggeredid"):
            raise EventError(400, f"A task event ({event_type}) needs 'triggeredid': the id of the task's .triggered event.")
    return IncomingEvent(
        raw=raw,
        id=raw.get("id") or str(uuid.uuid4()),
        type=event_type,
        parsed=parsed,
        source=raw.get("source") or "unknown",
        context=context,
        triggered_id=raw.get("triggeredid") or None,
        data=data,
    )


def deep_merge(base: dict, update: dict) -> dict:
    """A copy of base with update merged in: nested mappings merge, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def now_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(event_type: str, data: dict, context: str, triggered_id: str | None = None,
               moment: datetime | None = None) -> dict:
    """An event Bosun emits, in the shape executors expect."""
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "bosun",
        "type": event_type,
        "time": now_iso(moment),
        "datacontenttype": "application/json",
        "shkeptncontext": context,
        "shkeptnspecversion": "0.2.4",
        "data": data,
    }
    if triggered_id:
        event["triggeredid"] = triggered_id
    return event
