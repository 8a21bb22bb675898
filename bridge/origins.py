"""Websocket handshakes only from the Bridge's own pages: Origin must match scheme, host and port.

The origin must be the same as the address the socket was opened on (the Host header, http for ws and
https for wss), or one of BOSUN_CSRF_TRUSTED_ORIGINS (e.g. the https address of a TLS proxy in front).
Its host must also be one of ALLOWED_HOSTS. Anything else is refused before the consumer runs.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def origin_allowed(scope) -> bool:
    headers = dict(scope.get("headers") or [])
    origin = _origin_tuple(headers.get(b"origin", b"").decode("latin-1"))
    if origin is None or not validate_host(origin[1], settings.ALLOWED_HOSTS):
        return False
    trusted = {_origin_tuple(url) for url in settings.CSRF_TRUSTED_ORIGINS}
    if origin in trusted:
        return True
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    host, port = split_domain_port(headers.get(b"host", b"").decode("latin-1"))
    if not host:
        return False
    return origin == (scheme, host.lower(), int(port) if port else DEFAULT_PORTS[scheme])


class SameOriginValidator:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
