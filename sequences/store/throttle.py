"""Throttling of failed credentials: bad API tokens and bad logins, per client address and per user.

Counters live in Django's cache (per process by default; Redis when REDIS_URL is set, so every web
process shares them). A client address that failed `BOSUN_THROTTLE_FAILURES` times within
`BOSUN_THROTTLE_WINDOW` is refused (429, Retry-After: the seconds until its window ends) until its window
ends. Only unknown tokens are refused there: a valid token is never throttled by others' failures, so a
guesser behind the same proxy cannot lock executors and users out. A user whose logins failed
`BOSUN_THROTTLE_USER_FAILURES` times from anywhere is refused only at addresses that failed for that user,
so an attacker cannot lock the real user out from a clean address.

The client address is the connection's peer, unless that peer is one of `BOSUN_TRUSTED_PROXIES`: then it is
the nearest address in `X-Forwarded-For` that is not a trusted proxy (a client cannot forge its way past it).
"""

import ipaddress
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger("bosun.security")


class Throttled(Exception):
    def __init__(self, retry_after: int, what: str):
        super().__init__(what)
        self.retry_after = retry_after
        self.message = (f"Too many failed {what} from this address; try again in {retry_after} s.")


def client_address(request) -> str:
    return address_of(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""))


def address_of(peer: str, forwarded_for: str = "") -> str:
    """The client's address: the peer, or behind trusted proxies the nearest untrusted forwarded address."""
    if not peer:
        return "unknown"
    if not _trusted(peer):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _trusted(address: str) -> bool:
    networks = settings.BOSUN_TRUSTED_PROXIES
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _key(*parts) -> str:
    return "bosun-throttle:" + ":".join(str(p)[:200] for p in parts)


def _window() -> int:
    return int(settings.BOSUN_THROTTLE_WINDOW)


# A window is two entries: `key` holds when it started, `key:<start>` its count. Both are written with the
# cache's atomic operations (add, incr: Redis SET NX and INCR when shared), so failures counted at once by
# many requests or processes are all counted, and a new window never inherits an old count.


def _count(key: str) -> tuple[int, float]:
    started = cache.get(key)
    if not started:
        return 0, 0.0
    return int(cache.get(f"{key}:{started!r}") or 0), float(started)


def _add(key: str):
    """One more failure in the key's window; a window that has ended starts anew with this failure."""
    now = time.time()
    # The entries live exactly as long as their window: a later failure does not stretch it.
    cache.add(key, now, timeout=_window())
    started = cache.get(key) or now
    counter = f"{key}:{started!r}"
    cache.add(counter, 0, timeout=max(1, math.ceil(started + _window() - now)))
    try:
        cache.incr(counter)
    except ValueError:  # the window ended between the two calls: this failure opens the next one
        cache.add(counter, 1, timeout=max(1, math.ceil(started + _window() - now)))


def _wait(key: str, limit: int) -> int:
    """Seconds until the key's window ends when it reached `limit` failures, else 0."""
    count, started = _count(key)
    left = started + _window() - time.time()
    if count < limit or left <= 0:
        return 0
    return math.ceil(left)


# --- API tokens ------------------------------------------------------------------------------


def check_token_address(address: str):
    """Raise Throttled when this address sent too many unknown tokens (asked only once a token is unknown)."""
    wait = _wait(_key("token", address), settings.BOSUN_THROTTLE_FAILURES)
    if wait:
        raise Throttled(wait, "API token checks")


def token_failed(request):
    failed_token_at(client_address(request), f"{request.method} {request.path}")


def failed_token_at(address: str, where: str):
    _add(_key("token", address))
    log.warning("bad API token from %s on %s", address, where)


# --- logins (the Bridge's and admin's) -------------------------------------------------------


def check_login(request, username: str):
    address = client_address(request)
    wait = _wait(_key("login", address), settings.BOSUN_THROTTLE_FAILURES)
    if not wait and username and _count(_key("login-user-at", username, address))[0]:
        wait = _wait(_key("login-user", username), settings.BOSUN_THROTTLE_USER_FAILURES)
    if wait:
        raise Throttled(wait, "logins")


def login_failed(request, username: str):
    address = client_address(request)
    _add(_key("login", address))
    if username:
        _add(_key("login-user", username))
        _add(_key("login-user-at", username, address))
    log.warning("failed login for %r from %s", username, address)


def login_succeeded(request, username: str):
    address = client_address(request)
    cache.delete_many([_key("login", address), _key("login-user-at", username, address)])
