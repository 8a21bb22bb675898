"""Throttling of failed credentials: bad API tokens and bad logins, per client address and per user.

Counters live in Django's cache (per process by default; Redis when REDIS_URL is set, so every web
process shares them). A client address that failed `BOSUN_THROTTLE_FAILURES` times within
`BOSUN_THROTTLE_WINDOW` is refused (429, Retry-After) until its window ends. A user whose logins failed
`BOSUN_THROTTLE_USER_FAILURES` times from anywhere is refused only at addresses that failed for that user,
so an attacker cannot lock the real user out from a clean address.
"""

import logging
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
    return request.META.get("REMOTE_ADDR") or "unknown"


def _key(*parts) -> str:
    return "bosun-throttle:" + ":".join(str(p)[:200] for p in parts)


def _window() -> int:
    return int(settings.BOSUN_THROTTLE_WINDOW)


def _count(key: str) -> tuple[int, float]:
    value = cache.get(key)
    return value if value else (0, 0.0)


def _add(key: str):
    count, started = _count(key)
    now = time.time()
    if not count or now - started >= _window():
        count, started = 0, now
    cache.set(key, (count + 1, started), timeout=_window())


def _wait(key: str, limit: int) -> int:
    count, started = _count(key)
    if count < limit:
        return 0
    return max(1, int(started + _window() - time.time()) + 1)


# --- API tokens ------------------------------------------------------------------------------


def check_token_address(address: str):
    """Raise Throttled before a token is even looked at, when this address failed too often."""
    wait = _wait(_key("token", address), settings.BOSUN_THROTTLE_FAILURES)
    if wait:
        raise Throttled(wait, "API token checks")


def token_failed(request):
    address = client_address(request)
    _add(_key("token", address))
    log.warning("bad API token from %s on %s %s", address, request.method, request.path)


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
