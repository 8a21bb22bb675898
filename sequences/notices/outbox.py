"""Webhooks: a project's events, POSTed to a receiver's URL, signed, retried, and logged.

1. A webhook names a project, the event types it wants (Keptn's wildcards: `sh.keptn.event.*.finished`,
   `sh.keptn.event.>`; none: every event) and a URL. It has a secret that signs every delivery.
2. When an event is stored, a delivery row is written in the same transaction (`outbox`), so nothing
   accepted is lost and nothing rolled back is sent. Which projects have webhooks is known from a cache
   kept for a few seconds, so an event of a project without webhooks costs no query at all; a change of
   webhooks in any process is seen by every process's next event (sequences/store/generations.py).
3. The engine's sender sends them (sequences/notices/sending.py): a slow or failing receiver never holds a lock,
   slows intake or holds up another receiver.
"""

import logging
import secrets
import threading
import time
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.utils import timezone

from sequences.models import Delivery, Webhook
from sequences.rules import destinations
from sequences.rules.cloudevents import event_matches
from sequences.store.db import write_transaction
from sequences.store.generations import Generation

log = logging.getLogger("bosun.webhooks")

CACHE_SECONDS = 5.0
MAX_PATTERNS = 20


class WebhookError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message



# --- who wants what: a per-process cache, so intake costs nothing for projects without webhooks --------

_cache: dict = {"at": -CACHE_SECONDS, "hooks": {}, "generation": None}
_written = threading.Event()  # set after a commit that wrote deliveries: wakes this process's sender
_cache_lock = threading.Lock()
WEBHOOKS = Generation("webhooks")


def forget(**_):
    """A webhook changed: this process reads them again at its next event, and every other process too once
    the change has committed (the shared counter moves)."""
    _cache["at"] = -CACHE_SECONDS
    WEBHOOKS.bump_after_commit()


def _hooks_of(project: str) -> list[tuple[int, list]]:
    generation = WEBHOOKS.current()
    if (time.monotonic() - _cache["at"] >= CACHE_SECONDS or generation is None
            or generation != _cache["generation"]):
        with _cache_lock:
            hooks: dict[str, list] = {}
            for hook_id, name, events in Webhook.objects.filter(active=True).values_list(
                    "id", "project__name", "events"):
                hooks.setdefault(name, []).append((hook_id, events or []))
            _cache.update(hooks=hooks, at=time.monotonic(), generation=generation)
    return _cache["hooks"].get(project, [])


def outbox(event) -> None:
    """In the transaction that stores `event`: one pending delivery per webhook that wants it.

    INSERT ... SELECT re-reads the webhooks, so one deleted or switched off a moment ago (still in another
    process's cache) gets nothing and cannot fail the event's transaction.
    """
    if not event.project or event.outcome == "rejected":
        return
    wanted = [hook_id for hook_id, patterns in _hooks_of(event.project)
              if not patterns or any(event_matches(p, event.type) for p in patterns)]
    if not wanted:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table, hooks = Delivery._meta.db_table, Webhook._meta.db_table
    marks = ", ".join(["%s"] * len(wanted))
    transaction.on_commit(_written.set)  # the sender in this process goes at once; others within a second
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (webhook_id, event_id, state, attempts, next_attempt_at, last_error, created_at) "
            f"SELECT id, %s, %s, 0, %s, '', %s FROM {hooks} WHERE active AND id IN ({marks})",
            [event.id, Delivery.PENDING, now, now, *wanted])


# --- creating and changing webhooks (API and admin) --------------------------------------------------


def _url(value) -> str:
    value = _url_shape(value)
    try:
        destinations.check(value)
    except destinations.Refused as exc:
        raise WebhookError(400, str(exc)) from None
    return value


def _url_shape(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebhookError(400, "url must be the receiver's http or https URL.")
    value = value.strip()
    odd = next((c for c in value if not (33 <= ord(c) < 127) or c in '<>"{}|\\^`'), None)
    if odd is not None:
        raise WebhookError(400, f"url contains {odd!r}, which a URL cannot carry as it is: percent-encode it "
                                "(and write an international host name in its xn-- form).")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 500:
        raise WebhookError(400, f"url must be an http or https URL of at most 500 characters, not {value[:80]!r}.")
    return value


def _patterns(value) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > MAX_PATTERNS:
        raise WebhookError(400, f"events must be a list of at most {MAX_PATTERNS} event types.")
    for pattern in value:
        if not isinstance(pattern, str) or not pattern or len(pattern) > 200 or any(
                not (c.isascii() and (c.isalnum() or c in "._-*>")) for c in pattern):
            raise WebhookError(400, f"{str(pattern)[:80]!r} is not an event type: use letters, digits, '.', '-', "
                                    "'_' and the wildcards '*' and '>', e.g. sh.keptn.event.*.finished.")
    return value


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def create(project, raw: dict, created_by: str = "") -> Webhook:
    if not isinstance(raw, dict):
        raise WebhookError(400, "The body must be an object with url, and optionally events, secret and active.")
    secret = raw.get("secret")
    if secret is None or secret == "":
        secret = new_secret()
    elif not isinstance(secret, str) or not 16 <= len(secret) <= 200:
        raise WebhookError(400, "secret must be 16 to 200 characters (or left out: Bosun makes one).")
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise WebhookError(400, "active must be true or false.")
    url, events = _url(raw.get("url")), _patterns(raw.get("events"))
    with write_transaction():
        return Webhook.objects.create(project=project, url=url, events=events, secret=secret, active=active,
                                      created_by=created_by[:150])


def update(hook: Webhook, raw: dict) -> Webhook:
    if not isinstance(raw, dict):
        raise WebhookError(400, "The body must be an object with url, events or active.")
    if "url" in raw:
        hook.url = _url(raw["url"])
    if "events" in raw:
        hook.events = _patterns(raw["events"])
    if "active" in raw:
        if not isinstance(raw["active"], bool):
            raise WebhookError(400, "active must be true or false.")
        hook.active = raw["active"]
    with write_transaction():
        hook.save()
    return hook


def delete(hook: Webhook) -> None:
    """Remove a webhook and its delivery log; pending deliveries are not sent."""
    with write_transaction():
        hook.delete()


def retry_now(deliveries) -> int:
    """Send these deliveries again at the next turn of the sender (a failed one gets a fresh set of tries)."""
    with write_transaction():
        return deliveries.exclude(state=Delivery.DELIVERED).update(
            state=Delivery.PENDING, attempts=0, next_attempt_at=timezone.now())
