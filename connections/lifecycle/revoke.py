"""Disconnect: revoke at the provider when it supports it, then erase the tokens.

It runs under the connection's lease, like a refresh: a refresh in flight would otherwise
store its new tokens after the old ones were revoked and erased, and bring the connection
back to life with tokens nobody revoked. So a disconnect waits (bounded) for the refresh to
finish and then revokes the tokens that refresh stored.
"""

import time
from functools import partial

from connections import audit, oauth
from connections.lifecycle import lease, provider_calls
from connections.lifecycle.provider_calls import secrets_to_try, within_rate_limit
from connections.models import AuditEvent, Connection

POLL_SECONDS = 0.05


class RefreshUnderWay(Exception):
    """A refresh held the lease for the whole wait; nothing was changed."""


def _leased(connection_id: int, owner: str, wait_seconds: float) -> Connection:
    deadline = time.monotonic() + wait_seconds
    while True:
        conn = Connection.objects.select_related("app", "tenant").get(pk=connection_id)
        if lease.acquire(conn, owner=owner):
            return conn
        if time.monotonic() > deadline:
            raise RefreshUnderWay(
                "A refresh of this connection is under way; nothing was changed. "
                "Try Disconnect again in a moment."
            )
        time.sleep(POLL_SECONDS)


def _revoke_at_provider(conn: Connection) -> str:
    app = conn.app
    if not app.endpoint("revoke_url"):
        return "The provider has no revocation endpoint; the tokens were erased here."
    creds = oauth.credentials_for(app, secrets_to_try(app)[0])
    try:
        for token, hint in (
            (conn.refresh_token, "refresh_token"),
            (conn.access_token, "access_token"),
        ):
            if token:
                within_rate_limit(
                    app,
                    partial(oauth.revoke, app, creds, token=token, hint=hint),
                    max_wait=provider_calls.INTERACTIVE_RATE_LIMIT_WAIT,
                )
    except oauth.ProviderError as exc:
        return (
            f"The provider did not confirm revocation ({exc.describe()}); "
            "the tokens were erased here."
        )
    return "Revoked at the provider and erased here."


def disconnect(*, conn: Connection, actor, wait_seconds: float = 20.0) -> str:
    """Returns a sentence for the user saying what happened at the provider. Raises
    RefreshUnderWay when a refresh holds the connection for longer than wait_seconds."""
    owner = lease.new_owner()
    conn = _leased(conn.pk, owner, wait_seconds)
    rows = Connection.objects.filter(pk=conn.pk)
    try:
        # Revoked here first, so services stop getting its token while the provider is asked.
        rows.update(
            status=Connection.Status.REVOKED, next_refresh_at=None, refresh_enqueued_at=None
        )
        outcome = _revoke_at_provider(conn)
        rows.update(
            access_token=None,
            refresh_token=None,
            refresh_token_hash="",
            access_expires_at=None,
            refresh_expires_at=None,
        )
    finally:
        lease.release(conn.pk, owner=owner)
    audit.record(
        AuditEvent.Kind.REVOKED, tenant=conn.tenant, connection=conn, actor=actor, message=outcome
    )
    return outcome
