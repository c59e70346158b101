"""Tenant API keys: created by admins, stored as a hash only, scoped to one tenant.

A key reads `pk_<prefix>_<secret>`. The prefix is public (it is shown in the list and finds the
row); the secret carries 256 random bits, so a plain SHA-256 is enough to store it: a slow
password hash protects low-entropy input, and would only add latency to every API call.
"""

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connections import audit
from connections.models import AuditEvent, TenantApiKey, sha256_hex

Kind = AuditEvent.Kind
PREFIX_BYTES = 5  # 10 hex characters; the column holds 12
SECRET_BYTES = 32
# Anything that does not look like a key we issued is rejected before it reaches the database
# or the hash: no NUL bytes for PostgreSQL, no surrogates for .encode(), no oversized input.
KEY_RE = re.compile(rf"pk_([0-9a-f]{{{PREFIX_BYTES * 2}}})_([A-Za-z0-9_-]{{43}})", re.ASCII)
#: last_used_at is a hint for admins, not an access log: one write a minute is plenty
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    key: TenantApiKey
    plaintext: str  # returned once, to be shown once; never stored


def display_prefix(key: TenantApiKey) -> str:
    return f"pk_{key.prefix}_…"


@sensitive_variables()  # the plaintext is a local: kept out of error reports
def create(*, tenant, name: str, actor) -> NewKey:
    # A prefix clash is a 1-in-2^40 event per pair; retrying a few times makes it moot.
    for _attempt in range(5):
        prefix = secrets.token_hex(PREFIX_BYTES)
        plaintext = f"pk_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
        try:
            with transaction.atomic():
                key = TenantApiKey.objects.create(
                    tenant=tenant,
                    name=name,
                    prefix=prefix,
                    key_hash=sha256_hex(plaintext),
                    created_by=actor if getattr(actor, "is_authenticated", False) else None,
                )
        except IntegrityError:
            continue
        audit.record(
            Kind.API_KEY_CREATED,
            tenant=tenant,
            actor=actor,
            message=f"API key “{name}” ({display_prefix(key)}) created.",
            api_key_id=key.pk,
            prefix=prefix,
        )
        return NewKey(key=key, plaintext=plaintext)
    raise RuntimeError("could not find a free API key prefix")


def revoke(key: TenantApiKey, *, actor) -> bool:
    """Revoke once; False when it was already revoked (nothing changes, no event)."""
    now = timezone.now()
    changed = TenantApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if not changed:
        return False
    key.revoked_at = now
    audit.record(
        Kind.API_KEY_REVOKED,
        tenant=key.tenant,
        actor=actor,
        message=f"API key “{key.name}” ({display_prefix(key)}) revoked.",
        api_key_id=key.pk,
        prefix=key.prefix,
    )
    return True


def presented_key(request: HttpRequest) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-Api-Key: <key>`, else None."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-Api-Key", "").strip() or None


def authenticate(request: HttpRequest) -> TenantApiKey | None:
    """The active key the request presents, or None."""
    return authenticate_key(presented_key(request))


def authenticate_key(plaintext: str | None) -> TenantApiKey | None:
    match = KEY_RE.fullmatch(plaintext or "")
    if match is None:
        return None
    key = TenantApiKey.objects.filter(prefix=match.group(1), revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, sha256_hex(plaintext)):
        return None
    _touch(key)
    return key


def _touch(key: TenantApiKey) -> None:
    # Checked in memory first so the hot path makes no write at all within the minute; the
    # conditional UPDATE keeps concurrent requests from all writing when the minute turns.
    now = timezone.now()
    stale = now - LAST_USED_GRANULARITY
    if key.last_used_at is not None and key.last_used_at > stale:
        return
    TenantApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    key.last_used_at = now
