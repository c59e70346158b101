"""Disconnect: revoke at the provider when it supports it, then erase the tokens.

It runs under the connection's lease, like a refresh: a refresh in flight would otherwise
store its new tokens after the old ones were revoked and erased, and bring the connection
back to life with tokens nobody revoked. So a disconnect waits (bounded) for the refresh to
finish and then revokes the tokens that refresh stored.

When the provider does not answer (5xx, timeout, 429), erasing the tokens would leave the
grant alive at the provider with nobody able to revoke it: the tokens still to revoke are kept,
encrypted and never handed out (the connection is revoked), and the beat retries with backoff
until the provider confirms, refuses for good, or the tokens expire.
"""

from datetime import timedelta
from enum import StrEnum
from functools import partial
from typing import NamedTuple

from django.db.models import F
from django.utils import timezone

from connections import audit, oauth
from connections.lifecycle import lease, provider_calls
from connections.lifecycle.provider_calls import secrets_to_try, within_rate_limit
from connections.lifecycle.schedule import backoff
from connections.models import AuditEvent, Connection
from connections.webhook_events import EventType, emit

# With backoff from 30 s doubling to an hour, about 8 hours of tries.
MAX_REVOKE_TRIES = 12
Kind = AuditEvent.Kind
ERASED = {
    "access_token": None,
    "refresh_token": None,
    "refresh_token_hash": "",
    "access_expires_at": None,
    "refresh_expires_at": None,
    "revoke_retry_at": None,
}


class Revocation(StrEnum):
    CONFIRMED = "confirmed"  # or the provider has nothing to revoke with: tokens erased
    PENDING = "pending"  # not answered: tokens kept, a retry scheduled
    UNCONFIRMED = "unconfirmed"  # refused for good, or given up: tokens erased


class Disconnected(NamedTuple):
    message: str  # what happened at the provider, for the user
    confirmed: bool  # the provider confirmed, or has no revocation endpoint


class RefreshUnderWay(Exception):
    """A refresh held the lease for the whole wait; nothing was changed."""


def revoke_tokens(app, tokens: dict[str, str | None]) -> tuple[dict, oauth.ProviderError | None]:
    """Revoke the given tokens ({"refresh_token": …, "access_token": …}), refresh token first
    (RFC 7009: that ends the grant); the fields of those revoked, and the error that stopped
    the rest. Nothing is sent when the provider has no revocation endpoint."""
    if not app.endpoint("revoke_url"):
        return {}, None
    creds = oauth.credentials_for(app, secrets_to_try(app)[0])
    revoked = {}
    for field in ("refresh_token", "access_token"):  # each name is also its RFC 7009 hint
        token = tokens.get(field)
        if not token:
            continue
        try:
            within_rate_limit(
                app,
                partial(oauth.revoke, app, creds, token=token, hint=field),
                max_wait=provider_calls.INTERACTIVE_RATE_LIMIT_WAIT,
            )
        except oauth.ProviderError as exc:
            return revoked, exc
        revoked[field] = None
        if field == "refresh_token":
            revoked["refresh_token_hash"] = ""
    return revoked, None


def _revoke_each(conn: Connection) -> tuple[dict, oauth.ProviderError | None]:
    return revoke_tokens(
        conn.app, {"refresh_token": conn.refresh_token, "access_token": conn.access_token}
    )


def _tokens_expired(conn: Connection, now) -> bool:
    def gone(token, expires_at) -> bool:
        return not token or (expires_at is not None and expires_at <= now)

    return gone(conn.access_token, conn.access_expires_at) and gone(
        conn.refresh_token, conn.refresh_expires_at
    )


class _UnderLease:
    """Writes to a connection whose lease `owner` holds, each bumping its version."""

    def __init__(self, conn: Connection, owner: str):
        self.rows = Connection.objects.filter(pk=conn.pk, lease_owner=owner)

    def update(self, **fields) -> int:
        return self.rows.update(**fields, version=F("version") + 1)


def _settle(conn: Connection, *, tries: int, owner: str) -> tuple[str, Revocation]:
    """Revoke at the provider and write the outcome; the sentence for the user, and which."""
    rows = _UnderLease(conn, owner)
    now = timezone.now()
    settled = {**ERASED, "failure_count": 0, "last_error": ""}
    if not conn.app.endpoint("revoke_url"):
        rows.update(**settled)
        message = "The provider has no revocation endpoint; the tokens were erased here."
        return message, Revocation.CONFIRMED
    if _tokens_expired(conn, now):
        rows.update(**settled)
        message = "The tokens expired before the provider confirmed a revocation; erased here."
        return message, Revocation.CONFIRMED
    revoked, error = _revoke_each(conn)
    if error is None:
        rows.update(**settled)
        return "Revoked at the provider and erased here.", Revocation.CONFIRMED
    if error.transient and tries < MAX_REVOKE_TRIES:
        delay = max(backoff(tries), timedelta(seconds=error.retry_after or 0))
        rows.update(
            **revoked,
            revoke_retry_at=now + delay,
            failure_count=tries,
            last_error=error.describe(),
        )
        message = (
            f"The provider did not confirm revocation ({error.describe()}). The connection is "
            "disconnected here; revoking at the provider is retried in the background."
        )
        return message, Revocation.PENDING
    rows.update(**ERASED, failure_count=tries, last_error=error.describe())
    after = f" after {tries} tries" if tries > 1 else ""
    message = (
        f"The provider did not confirm revocation{after} ({error.describe()}); "
        "the tokens were erased here."
    )
    return message, Revocation.UNCONFIRMED


def disconnect(*, conn: Connection, actor, wait_seconds: float = 20.0) -> Disconnected:
    """Raises RefreshUnderWay when a refresh holds the connection longer than wait_seconds."""
    owner = lease.new_owner()
    conn = lease.acquire_waiting(conn.pk, owner=owner, wait_seconds=wait_seconds)
    if conn is None:
        raise RefreshUnderWay(
            "A refresh of this connection is under way; nothing was changed. "
            "Try Disconnect again in a moment."
        )
    try:
        # Revoked here first, so services stop getting its token while the provider is asked.
        revoked = _UnderLease(conn, owner).update(
            status=Connection.Status.REVOKED,
            next_refresh_at=None,
            refresh_enqueued_at=None,
            failure_count=0,
            last_error="",
        )
        outcome, state = _settle(conn, tries=1, owner=owner)
    finally:
        lease.release(conn.pk, owner=owner)
    audit.record(Kind.REVOKED, tenant=conn.tenant, connection=conn, actor=actor, message=outcome)
    if revoked:  # not when a reconnect took the lease meanwhile: the connection lives on
        emit(
            EventType.REVOKED,
            connection=conn,
            key=f"revoked:{conn.pk}:{conn.version}",
            revoked_at_provider=state == Revocation.CONFIRMED,
        )
    return Disconnected(outcome, state == Revocation.CONFIRMED)


def retry_revocation(connection_id: int) -> Revocation | None:
    """One more try for a disconnect the provider did not confirm; None when there was
    nothing to do (no longer pending, gone, or leased elsewhere)."""
    owner = lease.new_owner()
    try:
        conn = lease.acquire_waiting(connection_id, owner=owner, wait_seconds=0)
    except Connection.DoesNotExist:
        return None
    if conn is None:
        return None
    try:
        if conn.status != Connection.Status.REVOKED or conn.revoke_retry_at is None:
            return None
        outcome, state = _settle(conn, tries=conn.failure_count + 1, owner=owner)
    finally:
        lease.release(conn.pk, owner=owner)
    audit.record(
        Kind.REVOKED if state == Revocation.CONFIRMED else Kind.REVOKE_FAILED,
        tenant=conn.tenant,
        connection=conn,
        message=outcome,
    )
    return state


class NotDeletable(Exception):
    """Only a revoked connection whose tokens are all revoked (or erased) can be deleted."""


def delete_revoked(conn: Connection, *, actor) -> None:
    """Remove a revoked connection from the list; its audit trail stays (with the app). A
    connection still waiting for the provider to confirm a revocation keeps its row: it holds
    the tokens to revoke."""
    # Not while a reconnect holds the lease: its new grant would be neither stored nor revoked.
    deleted, _ = Connection.objects.filter(
        pk=conn.pk, status=Connection.Status.REVOKED, revoke_retry_at__isnull=True, lease_owner=""
    ).delete()
    if not deleted:
        raise NotDeletable(
            "Only a disconnected connection whose revocation is complete can be deleted."
        )
    audit.record(
        Kind.CONNECTION_DELETED,
        tenant=conn.tenant,
        app=conn.app,
        actor=actor,
        message=f"Connection #{conn.pk} ({conn.account_name or conn.account_id or 'no account'}) "
        "deleted.",
        connection_id=conn.pk,
    )
