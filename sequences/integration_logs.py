"""The errors integrations report (Keptn's log API): stored, read a page at a time, deleted.

Keptn's go-sdk forwards every `.finished` with status errored, and every `sh.keptn.log.error`, to
`POST /api/controlPlane/v1/log`. Bosun keeps the newest KEEP_PER_INTEGRATION entries of each integration and
the newest KEEP_IN_ALL of all of them; older ones are dropped as new ones arrive. A client's odd values are
stored as text, never refused one by one: only a body that is not a list of entries is refused.
"""

import json
from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime

from sequences.models import Integration, IntegrationLog
from sequences.store.db import write_transaction

KEEP_PER_INTEGRATION = 500
KEEP_IN_ALL = 20_000
MESSAGE_LIMIT = 4096  # characters of a message kept; a longer one ends with "…"
FIELD_LIMITS = {"integrationid": 200, "shkeptncontext": 100, "task": 200, "triggeredid": 100, "gitcommitid": 100}
PAGE_MAXIMUM = KEEP_PER_INTEGRATION  # one page holds at most this many; without pageSize, a page holds as many


class LogError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _text(value, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _moment(value) -> datetime:
    """The entry's time, or now when it has none that makes sense (Go sends 0001-01-01T00:00:00Z for none)."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.year < 2000:
        return datetime.now(timezone.utc)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def store(body) -> int:
    """Store the entries of Keptn's CreateLogsRequest ({"logs": [LogEntry, ...]}); returns how many."""
    entries = body.get("logs") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise LogError(400, 'The body must be {"logs": [{"integrationid", "message", "shkeptncontext", '
                            '"task", "triggeredid"}, ...]} (Keptn\'s CreateLogsRequest).')
    rows = [IntegrationLog(
        integration_id=_text(e.get("integrationid"), FIELD_LIMITS["integrationid"]),
        message=_text(e.get("message"), MESSAGE_LIMIT),
        context=_text(e.get("shkeptncontext"), FIELD_LIMITS["shkeptncontext"]),
        task=_text(e.get("task"), FIELD_LIMITS["task"]),
        triggered_id=_text(e.get("triggeredid"), FIELD_LIMITS["triggeredid"]),
        gitcommitid=_text(e.get("gitcommitid"), FIELD_LIMITS["gitcommitid"]),
        time=_moment(e.get("time"))) for e in entries]
    if not rows:
        return 0
    with write_transaction():
        IntegrationLog.objects.bulk_create(rows[-KEEP_IN_ALL:])
        for integration in {row.integration_id for row in rows}:
            _drop_oldest(IntegrationLog.objects.filter(integration_id=integration), KEEP_PER_INTEGRATION)
        if IntegrationLog.objects.count() > KEEP_IN_ALL:
            _drop_oldest(IntegrationLog.objects.all(), KEEP_IN_ALL)
    return len(rows)


def _drop_oldest(entries, keep: int):
    stale = list(entries.order_by("-time", "-id").values_list("id", flat=True)[keep:])
    for start in range(0, len(stale), 500):
        IntegrationLog.objects.filter(id__in=stale[start:start + 500]).delete()


def _filtered(integration_id: str | None, from_time: datetime | None, before_time: datetime | None):
    entries = IntegrationLog.objects.all()
    if integration_id:
        entries = entries.filter(integration_id=integration_id)
    if from_time is not None:
        entries = entries.filter(time__gte=from_time)
    if before_time is not None:
        entries = entries.filter(time__lte=before_time)
    return entries


def page(integration_id: str | None, from_time: datetime | None, before_time: datetime | None,
         size: int | None, offset: int) -> dict:
    """Keptn's GetLogsResponse: newest first; nextPageKey (an integer offset) only when more follow."""
    entries = _filtered(integration_id, from_time, before_time)
    total = entries.count()
    size = size or PAGE_MAXIMUM
    rows = [entry.as_keptn() for entry in entries.order_by("-time", "-id")[offset: offset + size]]
    return {"logs": rows, "pageSize": len(rows), "totalCount": total,
            **({"nextPageKey": offset + size} if offset + size < total else {})}


def delete(integration_id: str | None, from_time: datetime | None, before_time: datetime | None) -> int:
    with write_transaction():
        deleted, _ = _filtered(integration_id, from_time, before_time).delete()
    return deleted


def latest(integration_ids: list[str], each: int = 3) -> dict[str, list[IntegrationLog]]:
    """The newest `each` entries of each integration, for the Bridge's environment page."""
    return {i: list(IntegrationLog.objects.filter(integration_id=i).order_by("-time", "-id")[:each])
            for i in integration_ids}


def of_tasks(triggered_ids: list[str]) -> dict[str, list[IntegrationLog]]:
    """The entries that name these tasks, oldest first, each with its integration's name (`reporter`), for a
    sequence's page."""
    found: dict[str, list[IntegrationLog]] = {}
    entries = list(IntegrationLog.objects.filter(triggered_id__in=triggered_ids).order_by("time", "id")[:200])
    names = dict(Integration.objects.filter(integration_id__in={e.integration_id for e in entries})
                 .values_list("integration_id", "name")) if entries else {}
    for entry in entries:
        entry.reporter = names.get(entry.integration_id) or entry.integration_id or "an integration"
        found.setdefault(entry.triggered_id, []).append(entry)
    return found
