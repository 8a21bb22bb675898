"""Sending webhook deliveries: the engine's sender claims due deliveries in a short transaction and POSTs them
outside any transaction, each receiver on a worker of its own, each attempt within one deadline, to the
address it checked (sequences/rules/destinations.py); a failed attempt is tried again after 10 s, 20 s, 40 s ...
(at most an hour apart), MAX_ATTEMPTS times.

The receiver gets the CloudEvent as stored, with `X-Bosun-Signature: sha256=<hex>`, the HMAC-SHA256 of
`<X-Bosun-Timestamp>.<body>` under the webhook's secret (the timestamp lets it refuse replays).
"""

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from sequences.notices.outbox import Delivery, _written
from sequences.rules import destinations
from sequences.store.db import let_go_of_connection, write_transaction

log = logging.getLogger("bosun.webhooks")

MAX_ATTEMPTS = 8
FIRST_RETRY = 10.0  # seconds; doubled after each failure
MAX_RETRY = 3600.0
LEASE = timedelta(minutes=2)  # a claimed delivery is tried again if its sender died while sending


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
        from django.db import connection

        try:
            for delivery in deliveries:
                send(delivery)
        except Exception:
            log.exception("webhooks: sending failed")
        finally:
            connection.close()  # the thread ends here: its connection goes back (or is closed) with it
            _written.set()  # a receiver is free again: its next deliveries may be due

    def run(self):
        try:
            while not self.stopping.is_set():
                try:
                    if self.turn():
                        continue
                except Exception:
                    log.exception("webhooks: sending failed; trying again in a second")
                let_go_of_connection()  # not kept while it waits
                # Woken only by a commit that wrote deliveries: a busy intake without webhooks costs nothing.
                _written.wait(self.max_sleep)
                _written.clear()
        finally:
            let_go_of_connection()
