"""A valid access token for callers (the token API, the Test button), refreshing on demand.

Callers that find a refresh under way wait for it (bounded) and read the new token, so many
concurrent requests cause exactly one call to the provider.
"""

import time

from connections.lifecycle import lease
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import Connection, PrivateApp

Status = Connection.Status


class TokenUnavailable(Exception):
    """No valid token can be given: `reason` says why (needs_reauth, revoked, app_disabled,
    provider_down, busy)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def valid_connection(
    connection_id: int, *, tenant_id: int | None = None, wait_seconds: float = 20.0
) -> Connection:
    """The connection with a valid access token; Connection.DoesNotExist when it does not
    exist (within tenant_id, when given). Its refresh token is not read: callers never need it,
    and a refresh loads the row afresh."""
    deadline = time.monotonic() + wait_seconds
    rows = Connection.objects.select_related("app").defer("refresh_token")
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    while True:
        conn = rows.get(pk=connection_id)
        if conn.status in (Status.NEEDS_REAUTH, Status.REVOKED):
            raise TokenUnavailable(conn.status, conn.last_error or conn.get_status_display())
        if conn.app.status == PrivateApp.Status.DISABLED:
            raise TokenUnavailable("app_disabled", f"the app {conn.app.name} is disabled")
        if conn.access_token_valid():
            return conn
        outcome = refresh_connection(connection_id, reason="on_demand")
        if outcome in (Outcome.REFRESHED, Outcome.SUPERSEDED, Outcome.FRESH, Outcome.NEEDS_REAUTH):
            continue
        if outcome == Outcome.BUSY:
            if time.monotonic() > deadline:
                raise TokenUnavailable("busy", "a refresh is under way; try again shortly")
            time.sleep(lease.POLL_SECONDS)
            continue
        conn.refresh_from_db()
        if conn.access_token_valid():
            return conn
        raise TokenUnavailable("provider_down", conn.last_error or "the provider did not answer")
