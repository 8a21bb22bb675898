"""CloudEvents in Keptn's dialect: type names, intake validation, payload merge. No ORM here."""

import fnmatch
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime

PREFIX = "sh.keptn.event."
MAX_EVENT_BYTES = 64 * 1024
MAX_DEPTH = 32  # nested objects and arrays in one event, the event itself being level 1
# Event ids appear in Bridge URLs and the API's paths: no slash, no whitespace, nothing to escape.
ID_RE = re.compile(r"^[A-Za-z0-9._:@+=~-]{1,100}$")
# A \u0000 escape in JSON text (not an escaped backslash followed by "u0000"): PostgreSQL cannot store NUL.
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
FIELD_LIMITS = {"id": 100, "triggeredid": 100, "source": 200, "type": 200, "gitcommitid": 100,
                "specversion": 20, "datacontenttype": 100, "shkeptnspecversion": 20}
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
    """Check one client event against the intake rules; raise EventError(4xx) with the reason."""
    if not isinstance(raw, dict):
        raise EventError(400, "An event must be a JSON object (a CloudEvent).")
    depth = nesting_depth(raw, MAX_DEPTH)
    if depth > MAX_DEPTH:
        raise EventError(400, f"The event nests objects and arrays more than {MAX_DEPTH} levels deep; "
                              f"at most {MAX_DEPTH} are accepted.")
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)  # control characters (NUL too) stay escaped
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise EventError(400, "The event contains a lone UTF-16 surrogate (e.g. \\ud800), which is not text; "
                              "send valid Unicode.") from None
    if size > MAX_EVENT_BYTES:
        raise EventError(413, f"The event is {size} bytes; at most {MAX_EVENT_BYTES} bytes are accepted.")
    if "\\u0000" in text and _NUL.search(text):
        raise EventError(400, "The event contains a NUL character (\\u0000), which Bosun cannot store; remove it.")
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
    for key in ("id", "source", "shkeptncontext", "triggeredid", "time", "gitcommitid"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise EventError(400, f"The event's '{key}' must be a string.")
    for key, limit in FIELD_LIMITS.items():
        value = raw.get(key)
        if isinstance(value, str) and len(value) > limit:
            raise EventError(400, f"The event's '{key}' is {len(value)} characters long; at most {limit} are accepted.")
    if raw.get("id") and not ID_RE.match(raw["id"]):
        raise EventError(400, f"The event's id {raw['id']!r} is not accepted: use letters, digits and . _ : @ + = ~ - "
                              "(no slash, space or other character that needs escaping in a URL), as a UUID has.")
    if raw.get("time"):
        check_time(raw["time"], "The event's 'time'")
    for key in ("project", "stage", "service"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise EventError(400, f"data.{key} must be a string.")
        if isinstance(value, str) and len(value) > 100:
            raise EventError(400, f"data.{key} is {len(value)} characters long; at most 100 are accepted.")
    if parsed.is_sequence:  # a client's trigger: strict (its result and status reach every task's payload)
        if data.get("status") is not None and data.get("status") not in STATUSES:
            raise EventError(400, f"data.status must be one of {', '.join(STATUSES)}, not {data['status']!r}.")
        if data.get("result") is not None and data.get("result") not in RESULTS:
            raise EventError(400, f"data.result must be one of {', '.join(RESULTS)}, not {data['result']!r}.")
    labels = data.get("labels")
    if labels is not None and (not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())):
        raise EventError(400, "data.labels must be a JSON object of strings, e.g. {\"owner\": \"team-a\"}.")
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


def executor_verdict(data: dict) -> tuple[dict, str]:
    """An executor's data with `result`/`status` as Bosun counts them, and a note on what was odd.

    Liberal, as Keptn is: a result other than pass or warning counts as fail, a status Bosun does not
    know as errored. The event is stored as sent; only what Bosun decides on (and passes on) is normalised.
    """
    notes = []
    counted = dict(data)
    result, status = data.get("result"), data.get("status")
    if result is not None and result not in RESULTS:
        counted["result"] = "fail"
        notes.append(f"result {_shown(result)} is not pass, warning or fail: counted as fail")
    if status is not None and status not in STATUSES:
        counted["status"] = "errored"
        notes.append(f"status {_shown(status)} is not one Bosun knows: counted as errored")
    return counted, "; ".join(notes) + ("." if notes else "")


def _shown(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def nesting_depth(value, limit: int) -> int:
    """How deeply objects and arrays nest in `value` (a scalar is 0), counting no further than limit + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def check_time(value: str, what: str):
    """An ISO 8601 time that exists on the calendar, else EventError(400)."""
    try:
        parsed = parse_datetime(value)
    except ValueError as exc:
        raise EventError(400, f"{what} {value!r} is not a real moment ({exc}).") from None
    if parsed is None:
        raise EventError(400, f"{what} {value!r} is not an ISO 8601 time such as 2024-05-01T09:30:00Z.")
    return parsed


def _copy(value):
    """A deep copy of JSON data without recursion (stored payloads may nest deeper than Python recurses)."""
    if not isinstance(value, (dict, list)):
        return value
    root = {} if isinstance(value, dict) else []
    stack = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, (dict, list)):
                child = {} if isinstance(item, dict) else []
                stack.append((item, child))
            else:
                child = item
            if isinstance(target, dict):
                target[key] = child
            else:
                target.append(child)
    return root


def deep_merge(base: dict, update: dict) -> dict:
    """A copy of base with update merged in: nested mappings merge, lists concatenate (the update's items
    first), everything else is replaced.

    Iterative, so a payload of any depth that could be stored can be merged.
    """
    merged = _copy(base)
    stack = [(merged, update)]
    while stack:
        target, source = stack.pop()
        for key, value in source.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                stack.append((target[key], value))
            elif isinstance(value, list) and isinstance(target.get(key), list):
                target[key] = _copy(value) + target[key]  # as Keptn merges: the newest items first
            else:
                target[key] = _copy(value)
    return merged


def now_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_or_none(moment: datetime | None) -> str | None:
    return now_iso(moment) if moment else None


def make_event(event_type: str, data: dict, context: str, triggered_id: str | None = None,
               moment: datetime | None = None, gitcommitid: str = "") -> dict:
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
    if gitcommitid:
        event["gitcommitid"] = gitcommitid
    return event


# --- which events a subscription wants (Keptn's wildcards) ---------------------------------------


def event_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".>"):
        return event_type.startswith(pattern[:-1])
    return fnmatch.fnmatchcase(event_type, pattern) if "*" in pattern else pattern == event_type


def filter_matches(filter_: dict, project: str, stage: str, service: str) -> bool:
    for key, value in (("projects", project), ("stages", stage), ("services", service)):
        allowed = filter_.get(key) or []
        if allowed and value not in allowed:
            return False
    return True
