"""API tokens: only a token's SHA-256 is stored; a token carries its user's permissions."""

import hashlib
import secrets

from django.conf import settings
from django.db import models


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiToken(models.Model):
    """An API token; only its SHA-256 is stored. It carries its user's permissions."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="The first characters, to recognise it")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        plaintext = "bsn_" + secrets.token_urlsafe(30)
        token = cls.objects.create(user=user, name=name, digest=_digest(plaintext), prefix=plaintext[:10])
        return token, plaintext

    @classmethod
    def authenticate(cls, plaintext: str) -> "ApiToken | None":
        if not plaintext:
            return None
        token = (
            cls.objects.select_related("user")
            .filter(digest=_digest(plaintext), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        return token
