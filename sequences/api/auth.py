"""API tokens in `x-token` or `Authorization: Bearer`, and the permission checks of the endpoints."""

import hashlib
import threading
import time

from django.utils import timezone
from ninja.errors import HttpError
from ninja.security import APIKeyHeader, HttpBearer

from sequences.models import ApiToken
from sequences.store import throttle
from sequences.store.generations import Generation

OPERATE = "sequences.operate_sequences"
MANAGE = "sequences.manage_projects"
DEFINE_JOBS = "sequences.define_jobs"  # jobs are commands run on executor hosts: code execution there
PASS_FREEZES = "sequences.pass_freezes"

WHAT = {OPERATE: "trigger and control sequences", MANAGE: "manage projects",
        DEFINE_JOBS: "define jobs (commands that executors run)",
        PASS_FREEZES: "let a sequence through a freeze window"}


# A token's lookup (and its user's permissions) is kept for a few seconds, keyed by the token's SHA-256:
# three queries fewer per request. Revoking a token or changing a user or their permissions clears it here
# and bumps a counter every process shares (sequences/store/generations.py); each lookup compares that
# counter with the one its copy was made under, so the change holds in every process once it has committed.
TOKEN_CACHE_SECONDS = 10.0
TOKENS = Generation("tokens")
_known: dict[str, tuple[float, ApiToken, int]] = {}
_known_lock = threading.Lock()


def forget_tokens(**_):
    with _known_lock:
        _known.clear()
    TOKENS.bump_after_commit()


def cached_token(key: str | None) -> ApiToken | None:
    if not key:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    now = time.monotonic()
    generation = TOKENS.current()
    hit = _known.get(digest)
    if hit is not None and hit[0] > now and hit[2] == generation is not None:
        return hit[1]
    token = ApiToken.authenticate(key)
    if token is not None and generation is not None:
        token.user.get_all_permissions()  # fills the user's permission cache, kept with the token
        with _known_lock:
            if len(_known) > 10_000:
                _known.clear()
            _known[digest] = (now + TOKEN_CACHE_SECONDS, token, generation)
    return token


def authenticate(request, key):
    """The token's ApiToken (and request.user set to its user), or None; throttles unknown tokens."""
    token = token_from(throttle.client_address(request), key)
    if token is None:
        return None
    request.user = token.user
    request.api_token = token
    return token


def token_from(address: str, key: str | None) -> ApiToken | None:
    """The ApiToken of a key sent from an address, or None; Throttled when the key is unknown and the address
    sent too many unknown keys. A valid token is never refused for others' failures at its address."""
    token = cached_token(key)
    if token is None:
        throttle.check_token_address(address)
        return None
    now = timezone.now()
    # Touch last_used_at at most once a minute: a write per request would serialise reads on SQLite.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


class XToken(APIKeyHeader):
    param_name = "x-token"

    def authenticate(self, request, key):
        return authenticate(request, key)


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        return authenticate(request, token)


def actor(request) -> str:
    """Who did it, for the audit trail: the user and the token's name."""
    token = getattr(request, "api_token", None)
    if token is not None:
        return token_actor(token)
    return request.user.get_username()


def token_actor(token: ApiToken) -> str:
    return f"{token.user.get_username()} (token {token.name})"


def require(request, permission: str):
    if not request.user.has_perm(permission):
        what = WHAT.get(permission, permission)
        raise HttpError(403, f"User '{request.user.get_username()}' may not {what}; "
                             "ask an admin for the permission.")
