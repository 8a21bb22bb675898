"""The event log: every event in or out is stored here, in order, in the transaction that decides it."""

import threading
from contextlib import contextmanager

from django.db import IntegrityError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sequences.models import Event
from sequences.notices import outbox as webhooks
from sequences.rules import cloudevents as ev
from sequences.rules.cloudevents import EventError
from sequences.store.prepared import insert_all


class DuplicateEvent(EventError):
    """An event with this id and type is stored already: its insert met the unique index. The transaction
    it was part of is rolled back, so nothing of the second arrival is applied."""

    def __init__(self, event_id: str, event_type: str):
        super().__init__(409, f"Event {event_id} was received at the same moment twice.")
        self.event_id = event_id
        self.event_type = event_type


def _event_time(raw: dict):
    value = raw.get("time")
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # intake refuses impossible times; this keeps older rows readable
        parsed = None
    if parsed is None:
        return timezone.now()
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.utc)
    return parsed


_unit = threading.local()


@contextmanager
def together():
    """One unit of work (an arrival): the events it stores are written at its end, in one INSERT and in the
    order they were stored, still inside its transaction. The first is the arrival's own event, so an event
    received before still fails the insert (DuplicateEvent) and nothing of the unit is kept. Inside, a stored
    event has no id until the unit ends; nothing in the unit reads the log after storing in it."""
    if getattr(_unit, "events", None) is not None:  # within another unit: that one writes
        yield
        return
    _unit.events = []
    try:
        yield
        events = _unit.events
    finally:
        _unit.events = None
    if events:
        _write(events)


def _write(events: list) -> None:
    try:
        insert_all(events)
    except IntegrityError:
        raise DuplicateEvent(events[0].event_id, events[0].type) from None
    for event in events:
        webhooks.outbox(event)


def store_event(payload: dict, *, outcome=Event.APPLIED, note="", context=None, triggered_id=None, data=None,
                sent_by=""):
    data = data if data is not None else payload.get("data") or {}
    event = Event(
        event_id=payload["id"],
        type=payload["type"],
        source=payload.get("source") or "",
        context=context or payload.get("shkeptncontext") or "",
        triggered_id=triggered_id or payload.get("triggeredid") or "",
        project=str(data.get("project") or "")[:100],
        stage=str(data.get("stage") or "")[:100],
        service=str(data.get("service") or "")[:100],
        time=_event_time(payload),
        outcome=outcome,
        note=note,
        sent_by=sent_by[:200],
        payload=payload,
    )
    pending = getattr(_unit, "events", None)
    if pending is not None:
        pending.append(event)
    else:
        _write([event])
    return event


def emit(event_type: str, data: dict, context: str, triggered_id: str | None = None, gitcommitid: str = "") -> Event:
    payload = ev.make_event(event_type, data, context, triggered_id, gitcommitid=gitcommitid)
    return store_event(payload, outcome=Event.EMITTED)
