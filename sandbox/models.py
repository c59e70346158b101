"""The emulated providers' own state: clients, users, codes, tokens, faults, request log.

Nothing here is a portal object. Secrets, passwords, codes and tokens are stored only as
hashes, like a real provider would, so a test can never pass by reading them back; the one
exception is the secret a client's webhooks are signed with, encrypted (a signer needs it).
"""

import hashlib
import hmac

from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password, make_password
from django.db import models
from django.utils import timezone

from portal.fields import EncryptedTextField


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def matches_any(value: str | None, hashes: list[str]) -> bool:
    """Constant-time comparison against every stored hash (no early exit)."""
    if value is None:
        return False
    candidate = digest(value)
    found = False
    for stored in hashes:
        found |= hmac.compare_digest(candidate, stored)
    return found


class SandboxPasswordHasher(PBKDF2PasswordHasher):
    """Sandbox users are throwaway test identities: a cheap PBKDF2 keeps each login fast in
    the tests. The encoded string carries its iteration count, so check_password reads it."""

    iterations = 1000


def hash_password(raw: str) -> str:
    return make_password(raw, hasher=SandboxPasswordHasher())


class Client(models.Model):
    provider = models.CharField(max_length=40)
    client_id = models.CharField(max_length=255)
    name = models.CharField(max_length=120, blank=True)
    secret_hashes = models.JSONField(default=list)
    subscription_key_hashes = models.JSONField(default=list)
    #: the secret the provider signs webhooks with (its first): a provider must be able to
    #: read it to sign, so it is kept encrypted rather than hashed
    webhook_secret = EncryptedTextField(null=True, blank=True)
    redirect_uris = models.JSONField(default=list)
    account_ids = models.JSONField(default=list)
    scopes = models.JSONField(default=list)
    connector_uids = models.JSONField(default=list)
    access_lifetime = models.PositiveIntegerField()
    #: None: the provider issues no refresh tokens
    refresh_lifetime = models.PositiveIntegerField(null=True)
    #: token-endpoint requests allowed per window; None: unlimited
    rate_limit = models.PositiveIntegerField(null=True)
    rate_window = models.PositiveIntegerField(default=60)
    # A fixed window counter, advanced only with conditional UPDATEs (see sandbox.ratelimit).
    window_started_at = models.DateTimeField(null=True)
    window_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "client_id"], name="sandbox_client_unique")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.client_id}"

    def check_secret(self, secret: str | None) -> bool:
        return matches_any(secret, self.secret_hashes)

    @property
    def display_name(self) -> str:
        return self.name or self.client_id


class SandboxUser(models.Model):
    provider = models.CharField(max_length=40)
    username = models.CharField(max_length=150)
    password = models.CharField(max_length=128)
    #: [{"id": "1001", "name": "Acme Oy"}, ...] (Manu Online accounts)
    accounts = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "username"], name="sandbox_user_unique")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.username}"

    def check_password(self, raw: str) -> bool:
        return check_password(raw, self.password)


class Code(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="codes")
    user = models.ForeignKey(SandboxUser, on_delete=models.CASCADE, related_name="+")
    value_hash = models.CharField(max_length=64, unique=True)
    redirect_uri = models.TextField()
    scopes = models.JSONField(default=list)
    account_id = models.CharField(max_length=100, blank=True)
    account_name = models.CharField(max_length=200, blank=True)
    code_challenge = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"code for {self.client} ({'used' if self.used_at else 'unused'})"


class Token(models.Model):
    class Kind(models.TextChoices):
        ACCESS = "access"
        REFRESH = "refresh"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tokens")
    user = models.ForeignKey(SandboxUser, null=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value_hash = models.CharField(max_length=64, unique=True)
    #: the access and refresh token issued together share a pair id
    pair = models.CharField(max_length=32, db_index=True)
    scopes = models.JSONField(default=list)
    account_id = models.CharField(max_length=100, blank=True)
    account_name = models.CharField(max_length=200, blank=True)
    #: issued to a PKCE client without a secret: refresh and revoke need no secret (seed 003)
    public = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True)
    revoked_at = models.DateTimeField(null=True)
    #: a refresh token is single-use: set when it was exchanged
    used_at = models.DateTimeField(null=True)
    #: refresh tokens: how many token-endpoint calls presented this token, answered or refused;
    #: advanced only with conditional UPDATEs outside the grant's transaction
    presentations = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} token of {self.client} (pair {self.pair[:8]})"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.revoked_at is None
            and self.used_at is None
            and (self.expires_at is None or self.expires_at > now)
        )


class Fault(models.Model):
    class Kind(models.TextChoices):
        ERROR_5XX = "error_5xx"
        RATE_LIMIT = "rate_limit"
        LATENCY = "latency"
        LOST_RESPONSE = "lost_response"
        TRICKLE = "trickle"

    provider = models.CharField(max_length=40)
    client_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    #: token calls still to be hit; decremented with a conditional UPDATE
    remaining = models.PositiveIntegerField()
    status = models.PositiveSmallIntegerField(default=502)
    retry_after = models.PositiveIntegerField(default=2)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["provider", "client_id"], name="sandbox_fault_client")]

    def __str__(self) -> str:
        return f"{self.kind} x{self.remaining} for {self.provider}:{self.client_id}"


class TokenRequest(models.Model):
    """Every call that reached a token or revoke endpoint naming a client id."""

    provider = models.CharField(max_length=40)
    client_id = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=10)  # token / revoke
    grant_type = models.CharField(max_length=40, blank=True)
    request_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["provider", "client_id"], name="sandbox_request_client")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.grant_type} by {self.provider}:{self.client_id}"
