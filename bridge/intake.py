"""The event intake's own way in: POST /api/v1/event without Django's request cycle.

Every trigger and every executor's `.started` and `.finished` arrives here, so this is Bosun's hot path.
Django's ASGI handler would build a request, run ten middlewares and django-ninja, and hop between the
event loop and the sync thread several times per request. Here one hop does the token check and the
intake (`sequences.api.events.receive`, the same function the API view calls), and the answer carries the
same headers the rest of the API sends.

Anything out of the ordinary is handed, body and all, to Django, so those answers come from one place: no
token or an unknown one (401 and the failed-token throttle), a throttled address (429), a user without the
permission (403), a body that cannot be taken (413, 415, 400). Only a known token with the permission to
operate, and a body the intake takes, is answered here.
"""

import json
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection, reset_queries
from django.http.request import split_domain_port, validate_host
from ninja.errors import HttpError

from sequences import throttle
from sequences.api.auth import OPERATE, token_from
from sequences.api.events import BATCH_TYPE, receive
from sequences.events import MAX_EVENT_BYTES
from sequences.intake import MAX_BATCH_BYTES

log = logging.getLogger("bosun.api")

PATH = "/api/v1/event"
HAND_OVER = object()  # "let Django answer this one"


class EventIntake:
    """ASGI: POST /api/v1/event answered here; every other request, and every unusual one, goes to `app`."""

    def __init__(self, app):
        self.app = app
        # SQLite: the one sync thread Django's requests use too (bridge/asgi.py), so writes stay on one
        # connection. PostgreSQL: long-lived worker threads, each taking a pooled connection per event.
        sqlite = connection.vendor == "sqlite"
        self.work = sync_to_async(_answer, thread_sensitive=sqlite)

    async def __call__(self, scope, receive_message, send):
        if not (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH
                and not scope.get("root_path") and _ordinary(scope)):
            return await self.app(scope, receive_message, send)
        headers = dict(scope["headers"])
        key = headers.get(b"x-token") or _bearer(headers.get(b"authorization"))
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        limit = MAX_BATCH_BYTES if content_type == BATCH_TYPE else MAX_EVENT_BYTES
        read, body, complete = [], b"", True
        while True:
            message = await receive_message()
            read.append(message)
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                complete = False  # Django reads the rest and answers 413
                break
            if not message.get("more_body"):
                break
        answer = HAND_OVER
        if complete and key:
            address = scope["client"][0] if scope.get("client") else ""
            answer = await self.work(address, key.decode("latin-1"), content_type, body)
        if answer is HAND_OVER:
            return await self.app(scope, _replay(read, receive_message), send)
        status, payload = answer
        out = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_headers(scope), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})


def _answer(address: str, key: str, content_type: str, body: bytes):
    """(status, JSON) for one POST, or HAND_OVER; runs on a database thread, as a Django request would."""
    reset_queries()
    close_old_connections()
    try:
        token = token_from(address or "unknown", key)
        if token is None or not token.user.has_perm(OPERATE):
            return HAND_OVER
        return receive(content_type, body)
    except (HttpError, throttle.Throttled):
        return HAND_OVER
    except Exception:
        log.exception("POST %s failed", PATH)
        return 500, {"code": 500, "message": "Bosun failed to handle this request; the details are in its log."}
    finally:
        close_old_connections()


def _bearer(value: bytes | None) -> bytes | None:
    if value and value[:7].lower() == b"bearer ":
        return value[7:].strip() or None
    return None


def _secure(scope) -> bool:
    if settings.SECURE_PROXY_SSL_HEADER:
        name, value = settings.SECURE_PROXY_SSL_HEADER
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        sent = dict(scope["headers"]).get(header, b"").split(b",")[0].strip()
        return sent.decode("latin-1") == value
    return scope.get("scheme") == "https"


def _ordinary(scope) -> bool:
    """Neither a redirect to HTTPS nor a Host that Django would refuse is due."""
    if settings.SECURE_SSL_REDIRECT and not _secure(scope):
        return False
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _headers(scope) -> list[tuple[bytes, bytes]]:
    """The headers Django's middleware puts on every API answer (SecurityMiddleware, XFrameOptionsMiddleware)."""
    headers = [(b"content-type", b"application/json; charset=utf-8")]
    if settings.X_FRAME_OPTIONS:
        headers.append((b"x-frame-options", settings.X_FRAME_OPTIONS.upper().encode()))
    if settings.SECURE_HSTS_SECONDS and _secure(scope):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        policy = policy if isinstance(policy, str) else ",".join(policy)
        headers.append((b"referrer-policy", policy.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    return headers


def _replay(read: list, receive_message):
    """An ASGI receive that gives back what was already read, then reads on."""
    pending = list(read)

    async def replayed():
        if pending:
            return pending.pop(0)
        return await receive_message()

    return replayed
