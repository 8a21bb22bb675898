"""Webhooks: a project's events, POSTed to a receiver's URL, signed, retried, and logged.

1. A webhook names a project, the event types it wants (Keptn's wildcards: `sh.keptn.event.*.finished`,
   `sh.keptn.event.>`; none: every event) and a URL. It has a secret that signs every delivery.
2. When an event is stored, a delivery row is written in the same transaction (`outbox`), so nothing
   accepted is lost and nothing rolled back is sent. Which projects have webhooks is known from a cache
   kept for a few seconds, so an event of a project without webhooks costs no query at all.
3. The engine's sender (`Sender`, on a thread of its own) claims due deliveries in a short transaction and
   POSTs them outside any transaction: a slow or failing receiver never holds a lock or slows intake.
   Each attempt has one deadline for all of it, reads none of the answer's body, and goes only to a public
   address (sequences/destinations.py); each receiver is sent to on a worker of its own.
   A failed attempt is tried again after 10 s, 20 s, 40 s ... (at most an hour apart), MAX_ATTEMPTS times.

The receiver gets the CloudEvent as stored, with `X-Bosun-Signature: sha256=<hex>`, the HMAC-SHA256 of
`<X-Bosun-Timestamp>.<body>` under the webhook's secret (the timestamp lets it refuse replays).
"""

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from . import destinations
from .db import write_transaction
from .uniform import _event_matches

log = logging.getLogger("bosun.webhooks")

MAX_ATTEMPTS = 8
FIRST_RETRY = 10.0  # seconds; doubled after each failure
MAX_RETRY = 3600.0
LEASE = timedelta(minutes=2)  # a claimed delivery is tried again if its sender died while sending
CACHE_SECONDS = 5.0
MAX_PATTERNS = 20


class WebhookError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Webhook(models.Model):
    project = models.ForeignKey("sequences.Project", on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField("URL", max_length=500, help_text="Where the events are POSTed (http or https)")
    events = models.JSONField(default=list, blank=True,
                              help_text="Event types, Keptn's wildcards allowed, e.g. sh.keptn.event.*.finished; "
                                        "empty: every event of the project")
    secret = models.CharField(max_length=200, help_text="Signs each delivery (HMAC-SHA256)")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "sequences"
        ordering = ["project__name", "id"]

    def __str__(self):
        return f"{self.project.name} → {self.url}"

    def as_json(self, secret: bool = False) -> dict:
        body = {"id": self.id, "project": self.project.name, "url": self.url, "events": self.events,
                "active": self.active, "createdBy": self.created_by,
                "createdAt": self.created_at.isoformat().replace("+00:00", "Z")}
        if secret:
            body["secret"] = self.secret
        return body


class Delivery(models.Model):
    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATES = [(PENDING, "pending"), (DELIVERED, "delivered"), (FAILED, "failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("sequences.Event", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=STATES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="The receiver's HTTP status")
    last_error = models.TextField(blank=True)
    last_duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "sequences"
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # the sender's claim: due pending deliveries, oldest first
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
        ]

    def __str__(self):
        return f"delivery {self.id} of event {self.event_id} ({self.state})"

    def as_json(self) -> dict:
        iso = lambda t: t.isoformat().replace("+00:00", "Z") if t else None  # noqa: E731
        return {"id": self.id, "webhookId": self.webhook_id, "eventId": self.event.event_id,
                "eventType": self.event.type, "state": self.state, "attempts": self.attempts,
                "nextAttemptAt": iso(self.next_attempt_at) if self.state == self.PENDING else None,
                "lastStatus": self.last_status, "lastError": self.last_error,
                "lastDurationMs": self.last_duration_ms, "createdAt": iso(self.created_at),
                "deliveredAt": iso(self.delivered_at)}


# --- who wants what: a per-process cache, so intake costs nothing for projects without webhooks --------

_cache: dict = {"at": -CACHE_SECONDS, "hooks": {}}
_written = threading.Event()  # set after a commit that wrote deliveries: wakes this process's sender
_cache_lock = threading.Lock()


def forget(**_):
    """A webhook changed in this process: read them again at the next event (other processes: within 5 s)."""
    _cache["at"] = -CACHE_SECONDS


def _hooks_of(project: str) -> list[tuple[int, list]]:
    if time.monotonic() - _cache["at"] >= CACHE_SECONDS:
        with _cache_lock:
            if time.monotonic() - _cache["at"] >= CACHE_SECONDS:
                hooks: dict[str, list] = {}
                for hook_id, name, events in Webhook.objects.filter(active=True).values_list(
                        "id", "project__name", "events"):
                    hooks.setdefault(name, []).append((hook_id, events or []))
                _cache.update(hooks=hooks, at=time.monotonic())
    return _cache["hooks"].get(project, [])


def outbox(event) -> None:
    """In the transaction that stores `event`: one pending delivery per webhook that wants it.

    INSERT ... SELECT re-reads the webhooks, so one deleted or switched off a moment ago (still in another
    process's cache) gets nothing and cannot fail the event's transaction.
    """
    if not event.project or event.outcome == "rejected":
        return
    wanted = [hook_id for hook_id, patterns in _hooks_of(event.project)
              if not patterns or any(_event_matches(p, event.type) for p in patterns)]
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


# --- sending ------------------------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> float:
    return min(MAX_RETRY, FIRST_RETRY * 2 ** max(0, attempts - 1))


def claim_due(now=None, limit: int = 20, busy=()) -> list[Delivery]:
    """Due deliveries, each claimed by one sender: its next attempt moves a lease ahead, conditionally.
    Deliveries of the webhooks in `busy` (being sent to right now) are left for later."""
    now = now or timezone.now()
    due = list(Delivery.objects.filter(state=Delivery.PENDING, next_attempt_at__lte=now)
               .exclude(webhook_id__in=list(busy))
               .order_by("next_attempt_at", "id").values_list("id", "next_attempt_at")[:limit])
    with write_transaction():
        claimed = [delivery_id for delivery_id, at in due
                   if Delivery.objects.filter(id=delivery_id, state=Delivery.PENDING, next_attempt_at=at)
                   .update(next_attempt_at=now + LEASE, attempts=models.F("attempts") + 1) == 1]
    return list(Delivery.objects.select_related("webhook", "event").filter(id__in=claimed).order_by("id"))


async def _post(url: str, body: bytes, headers: dict) -> int:
    """POST to the checked address; the answer's status (its body is never read: it stays the receiver's)."""
    import httpx

    url, host, server_name = destinations.pinned(url)
    async with httpx.AsyncClient(follow_redirects=False, timeout=settings.BOSUN_WEBHOOK_TIMEOUT) as client:
        request = client.build_request("POST", url, content=body, headers={**headers, "Host": host},
                                       extensions={"sni_hostname": server_name})
        response = await client.send(request, stream=True)
        await response.aclose()
        return response.status_code


def attempt(url: str, body: bytes, headers: dict) -> tuple[int | None, str]:
    """One attempt, within BOSUN_WEBHOOK_TIMEOUT all told (a receiver that answers a byte at a time gets no
    more): (status, error). Errors say what Bosun knows, never what the receiver said."""
    import asyncio

    import httpx

    limit = settings.BOSUN_WEBHOOK_TIMEOUT
    try:
        status = asyncio.run(asyncio.wait_for(_post(url, body, headers), limit))
    except destinations.Refused as exc:
        return None, f"not sent: {exc}"
    except (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException):
        return None, f"the receiver did not answer within {limit:g}s"
    except Exception:  # refused, reset, TLS: the same words, so webhooks cannot probe what lies behind a URL
        return None, "the receiver could not be reached"
    if not 200 <= status < 300:
        return status, f"the receiver answered {status}"
    return status, ""


def send(delivery: Delivery, now=None) -> bool:
    """One attempt, outside any transaction; the outcome is written with one UPDATE."""
    body = json.dumps(delivery.event.payload, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/cloudevents+json", "User-Agent": "Bosun-Webhook/1",
               "X-Bosun-Delivery": str(delivery.id), "X-Bosun-Event": delivery.event.type,
               "X-Bosun-Timestamp": stamp, "X-Bosun-Signature": signature(delivery.webhook.secret, stamp, body)}
    started = time.perf_counter()
    status, error = attempt(delivery.webhook.url, body, headers)
    took = round((time.perf_counter() - started) * 1000, 1)
    now = timezone.now()
    fields = {"last_status": status, "last_error": error, "last_duration_ms": took}
    if not error:
        fields.update(state=Delivery.DELIVERED, delivered_at=now)
    elif delivery.attempts >= MAX_ATTEMPTS:
        fields.update(state=Delivery.FAILED)
        log.warning("webhook %s: gave up on delivery %s after %d attempts: %s", delivery.webhook_id, delivery.id,
                    delivery.attempts, error)
    else:
        fields.update(next_attempt_at=now + timedelta(seconds=backoff(delivery.attempts)))
        log.info("webhook %s: delivery %s failed (attempt %d): %s", delivery.webhook_id, delivery.id,
                 delivery.attempts, error)
    with write_transaction():
        Delivery.objects.filter(id=delivery.id).update(**fields)
    return not error


def send_due(now=None) -> int:
    """Claim and send what is due, one receiver after another; returns how many attempts were made."""
    deliveries = claim_due(now)
    for delivery in deliveries:
        send(delivery)
    return len(deliveries)


MAX_RECEIVERS_AT_ONCE = 8


class Sender(threading.Thread):
    """Sends deliveries beside the engine, so a slow receiver never delays a timer.

    Each webhook's due deliveries go out in order on a worker thread of their own (at most
    MAX_RECEIVERS_AT_ONCE at a time), so a receiver that takes its time holds up only its own deliveries.
    """

    def __init__(self, max_sleep: float = 1.0):
        super().__init__(name="bosun-webhooks", daemon=True)
        self.max_sleep = max_sleep  # deliveries written by other processes, and retries, are seen this often
        self.stopping = threading.Event()
        self.busy: dict[int, threading.Thread] = {}

    def stop(self):
        self.stopping.set()
        _written.set()
        self.join(timeout=settings.BOSUN_WEBHOOK_TIMEOUT + 5)
        for worker in list(self.busy.values()):
            worker.join(timeout=settings.BOSUN_WEBHOOK_TIMEOUT + 5)

    def turn(self) -> int:
        """Hand each webhook with due deliveries to a worker, unless one is sending to it; how many."""
        self.busy = {hook: worker for hook, worker in self.busy.items() if worker.is_alive()}
        room = MAX_RECEIVERS_AT_ONCE - len(self.busy)
        if room <= 0:
            return 0
        claimed = claim_due(busy=set(self.busy))
        by_hook: dict[int, list[Delivery]] = {}
        for delivery in claimed:
            by_hook.setdefault(delivery.webhook_id, []).append(delivery)
        for hook, deliveries in by_hook.items():
            worker = threading.Thread(target=self._send, args=(deliveries,), name=f"bosun-webhook-{hook}",
                                      daemon=True)
            self.busy[hook] = worker
            worker.start()
        return len(claimed)

    def _send(self, deliveries: list[Delivery]):
        from django.db import close_old_connections

        try:
            for delivery in deliveries:
                send(delivery)
        except Exception:
            log.exception("webhooks: sending failed")
        finally:
            close_old_connections()
            _written.set()  # a receiver is free again: its next deliveries may be due

    def run(self):
        from django.db import close_old_connections

        try:
            while not self.stopping.is_set():
                close_old_connections()
                try:
                    if self.turn():
                        continue
                except Exception:
                    log.exception("webhooks: sending failed; trying again in a second")
                # Woken only by a commit that wrote deliveries: a busy intake without webhooks costs nothing.
                _written.wait(self.max_sleep)
                _written.clear()
        finally:
            close_old_connections()
