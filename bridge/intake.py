"""The API's hot paths have a way in of their own, without Django's request cycle.

Every trigger, every executor's `.started` and `.finished` (POST /api/v1/event) and every pause, resume and
abort (POST .../sequence/{project}/{context}/control) arrives here. Django's ASGI handler would build a
request, run ten middlewares and django-ninja, and hop between the event loop and the sync thread several
times per request. Here one hop does the token check and the work, through the same functions the API views
call (`sequences.api.events.receive`, `sequences.api.control.control_command`), and the answer carries the
same headers the rest of the API sends.

Anything out of the ordinary is handed, body and all, to Django, so those answers come from one place: no
token or an unknown one (401 and the failed-token throttle), a throttled address (429), a user without the
permission (403), a body that cannot be taken (413, 415, 400). Only a known token with the permission to
operate, and a body the work takes, is answered here.

The rule that makes the hand-over safe: the work raises HttpError (or Throttled) only before it has applied
anything, so Django can answer the same request afresh. Work that has applied something answers itself.
"""

import asyncio
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection, reset_queries
from django.http.request import split_domain_port, validate_host
from ninja.errors import HttpError
from pydantic import ValidationError

from sequences.api.auth import OPERATE, token_actor, token_from
from sequences.api.control import ControlCommand, command_actor, control_command
from sequences.api.events import BATCH_TYPE, receive
from sequences.rules.cloudevents import MAX_EVENT_BYTES
from sequences.store import throttle
from sequences.store.db import storage_trouble
from sequences.transitions.arrivals import MAX_BATCH_BYTES

log = logging.getLogger("bosun.api")

HAND_OVER = object()  # "let Django answer this one"

# Every middleware of settings.MIDDLEWARE, and what the way in here does in its place. A test compares this with
# the setting: a middleware added there must be accounted for here (done here too, or why it need not be).
MIDDLEWARE_ACCOUNTED_FOR = {
    "django.middleware.security.SecurityMiddleware": "_ordinary (SSL redirect) and _headers (its headers)",
    "bridge.apierrors.JsonErrors": "not needed: every answer of the way in is JSON already",
    "bridge.staticfiles.StaticFilesMiddleware": "not needed: static files are never POSTed here",
    "django.contrib.sessions.middleware.SessionMiddleware": "not needed: tokens, no session",
    "django.middleware.common.CommonMiddleware": "_ordinary (the Host check)",
    "django.middleware.csrf.CsrfViewMiddleware": "not needed: the API is csrf-exempt (tokens, no cookies)",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "token_from (the token's user)",
    "django.contrib.messages.middleware.MessageMiddleware": "not needed: no pages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "_headers (X-Frame-Options)",
    "django_htmx.middleware.HtmxMiddleware": "not needed: no htmx requests",
    "bridge.logins.login_throttle": "not needed: logins only; unknown tokens go to Django (its throttle)",
    "bridge.failures.StorageTrouble": "_answer (storage_trouble: 507 or 503)",
}


def _event(token, headers: dict, content_type: str, body: bytes):
    return receive(content_type, body, token_actor(token))


def _control(token, headers: dict, content_type: str, body: bytes, project: str, context: str):
    try:
        payload = ControlCommand.model_validate(json.loads(body))
    except (ValueError, RecursionError, ValidationError):  # Django says what is wrong with it
        return HAND_OVER
    who = command_actor(token_actor(token), headers.get(b"x-bosun-source", b"").decode("latin-1") or None)
    idempotency_key = headers.get(b"idempotency-key", b"").decode("latin-1")
    outcome = control_command(project, context, payload, who, idempotency_key)
    return outcome.code, outcome.body


# (path, what answers it, the most bytes its body may have before Django is asked to refuse it)
ROUTES = [
    (re.compile(r"/api/v1/event"), _event, MAX_BATCH_BYTES),
    (re.compile(r"/api/controlPlane/v1/sequence/(?P<project>[^/]+)/(?P<context>[^/]+)/control"), _control,
     MAX_EVENT_BYTES),
]


class EventIntake:
    """ASGI: POST /api/v1/event answered here; every other request, and every unusual one, goes to `app`."""

    def __init__(self, app):
        self.app = app
        # Long-lived threads, each with its own database connection. SQLite: one, as it has one writer at a
        # time (its connection stays open). PostgreSQL: a few, each taking a pooled connection per request.
        sqlite = connection.vendor == "sqlite"
        self.threads = ThreadPoolExecutor(max_workers=1 if sqlite else 4, thread_name_prefix="bosun-intake")

    async def work(self, *args):
        return await asyncio.get_running_loop().run_in_executor(self.threads, _answer, *args)

    async def __call__(self, scope, receive_message, send):
        route = _route(scope)
        if route is None:
            return await self.app(scope, receive_message, send)
        work, limit, match = route
        headers = dict(scope["headers"])
        key = headers.get(b"x-token") or _bearer(headers.get(b"authorization"))
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if work is _event and content_type != BATCH_TYPE:
            limit = MAX_EVENT_BYTES
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
            peer = scope["client"][0] if scope.get("client") else ""
            address = throttle.address_of(peer, headers.get(b"x-forwarded-for", b"").decode("latin-1"))
            answer = await self.work(scope["path"], work, match, address, key.decode("latin-1"), headers,
                                     content_type, body)
        if answer is HAND_OVER:
            return await self.app(scope, _replay(read, receive_message), send)
        status, payload = answer
        out = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_headers(scope), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})


def _route(scope):
    """(work, body limit, path parameters) when this request is one answered here."""
    if not (scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path")):
        return None
    for path, work, limit in ROUTES:
        match = path.fullmatch(scope["path"])
        if match:
            return (work, limit, match.groupdict()) if _ordinary(scope) else None
    return None


def _answer(path: str, work, match: dict, address: str, key: str, headers: dict, content_type: str, body: bytes):
    """(status, JSON) for one POST, or HAND_OVER; runs on a database thread, as a Django request would."""
    reset_queries()
    close_old_connections()
    try:
        token = token_from(address, key)
        if token is None or not token.user.has_perm(OPERATE):
            return HAND_OVER
        return work(token, headers, content_type, body, **match)
    except (HttpError, throttle.Throttled):
        return HAND_OVER
    except Exception as exc:
        trouble = storage_trouble(exc)
        if trouble is not None:
            log.error("POST %s: %s", path, exc)
            return trouble[0], {"code": trouble[0], "message": trouble[1]}
        log.exception("POST %s failed", path)
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
