"""API tokens in `x-token` or `Authorization: Bearer`, and the permission checks of the endpoints."""

from django.utils import timezone
from ninja.errors import HttpError
from ninja.security import APIKeyHeader, HttpBearer

from .. import throttle
from ..models import ApiToken

OPERATE = "sequences.operate_sequences"
MANAGE = "sequences.manage_projects"


def _authenticate(request, key):
    throttle.check_token_address(request)
    token = ApiToken.authenticate(key)
    if token is None:
        return None
    now = timezone.now()
    # Touch last_used_at at most once a minute: a write per request would serialise reads on SQLite.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    request.user = token.user
    request.api_token = token
    return token


class XToken(APIKeyHeader):
    param_name = "x-token"

    def authenticate(self, request, key):
        return _authenticate(request, key)


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        return _authenticate(request, token)


def actor(request) -> str:
    """Who did it, for the audit trail: the user and the token's name."""
    token = getattr(request, "api_token", None)
    if token is not None:
        return f"{token.user.get_username()} (token {token.name})"
    return request.user.get_username()


def require(request, permission: str):
    if not request.user.has_perm(permission):
        what = "trigger and control sequences" if permission == OPERATE else "manage projects"
        raise HttpError(403, f"User '{request.user.get_username()}' may not {what}; "
                             "ask an admin for the permission.")
