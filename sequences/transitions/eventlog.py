"""The event log: every event in or out is stored here, in order, in the transaction that decides it."""

from django.db import IntegrityError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sequences.models import Event
from sequences.notices import outbox as webhooks
from sequences.rules import cloudevents as ev
from sequences.rules.cloudevents import EventError
from sequences.store.prepared import save


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


def store_event(payload: dict, *, outcome=Event.APPLIED, note="", context=None, triggered_id=None, data=None,
                sent_by=""):
    data = data if data is not None else payload.get("data") or {}
    try:
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
        save(event)
    except IntegrityError:
        raise EventError(409, f"Event {payload['id']} was received at the same moment twice.") from None
    webhooks.outbox(event)
    return event


def emit(event_type: str, data: dict, context: str, triggered_id: str | None = None, gitcommitid: str = "") -> Event:
    payload = ev.make_event(event_type, data, context, triggered_id, gitcommitid=gitcommitid)
    return store_event(payload, outcome=Event.EMITTED)
