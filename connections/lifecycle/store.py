"""The write that records new tokens: first, before any other work, retried if the DB blips."""

import logging
import time

from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from connections.lifecycle.schedule import next_refresh_at
from connections.models import Connection, PrivateApp, sha256_hex
from connections.oauth import TokenSet

log = logging.getLogger(__name__)
STORE_ATTEMPTS = 8


def token_fields(*, app: PrivateApp, kind: str, tokens: TokenSet, refresh_expires_at) -> dict:
    """Column values for a fresh token set; expiry defaults come from the catalogue."""
    now = timezone.now()
    provider = app.catalogue
    access_expires_at = now + (
        timezone.timedelta(seconds=tokens.expires_in)
        if tokens.expires_in
        else provider.access_lifetime
    )
    fields = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "access_expires_at": access_expires_at,
        "status": Connection.Status.ACTIVE,
        "failure_count": 0,
        "last_error": "",
        "last_refreshed_at": now,
        "refresh_enqueued_at": None,
    }
    if tokens.refresh_token:
        refresh_expires_at = now + provider.refresh_lifetime if provider.refresh_lifetime else None
        fields["refresh_token"] = tokens.refresh_token
        fields["refresh_token_hash"] = sha256_hex(tokens.refresh_token)
        fields["refresh_expires_at"] = refresh_expires_at
    if tokens.scope:
        fields["scope"] = tokens.scope
    fields["next_refresh_at"] = next_refresh_at(
        app=app,
        kind=kind,
        now=now,
        access_expires_at=access_expires_at,
        refresh_expires_at=refresh_expires_at,
    )
    return fields


def store_tokens(*, conn: Connection, tokens: TokenSet, lease_owner: str) -> dict:
    """Persist a provider's answer at once, and in the same write release the lease if
    lease_owner still holds it. The write happens whoever holds the lease by now: these are the
    only tokens the provider honours. They stay in memory across retries: a rotated refresh
    token that is not stored is lost for good."""
    fields = token_fields(
        app=conn.app, kind=conn.kind, tokens=tokens, refresh_expires_at=conn.refresh_expires_at
    )
    ours = Q(lease_owner=lease_owner)
    released = {
        "lease_owner": Case(When(ours, then=Value("")), default=F("lease_owner")),
        "lease_expires_at": Case(When(ours, then=Value(None)), default=F("lease_expires_at")),
        "inflight_refresh_hash": Case(
            When(ours, then=Value("")), default=F("inflight_refresh_hash")
        ),
    }
    # A refresh whose lease lapsed (a stalled worker) may answer after a disconnect: its
    # tokens are stored all the same, but the connection stays disconnected and unscheduled.
    revoked = Q(status=Connection.Status.REVOKED)
    stays_revoked = {
        "status": Case(When(revoked, then=F("status")), default=Value(fields["status"])),
        "next_refresh_at": Case(
            When(revoked, then=Value(None)),
            default=Value(fields["next_refresh_at"]),
            output_field=DateTimeField(),
        ),
    }
    for attempt in range(STORE_ATTEMPTS):
        try:
            Connection.objects.filter(pk=conn.pk).update(
                **{**fields, **stays_revoked},
                **released,
                refresh_count=F("refresh_count") + 1,
                version=F("version") + 1,
            )
            return fields
        except (OperationalError, InterfaceError):
            log.warning("storing tokens for connection %s failed; retrying", conn.pk, exc_info=True)
            close_old_connections()
            time.sleep(min(5.0, 0.1 * 2**attempt))
    log.critical(
        "could not store new tokens for connection %s after %s attempts", conn.pk, STORE_ATTEMPTS
    )
    raise OperationalError(f"could not store new tokens for connection {conn.pk}")
