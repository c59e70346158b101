"""A valid access token for callers (the token API, the Test button), refreshing on demand.

At most one refresh per request, and at most one on-demand refresh of a connection per
ON_DEMAND_REFRESH_FLOOR seconds: a provider whose tokens are short-lived (or born nearly
expired) is served its live token rather than hammered. Callers that find a refresh under way
wait for it (bounded) and read the new token, so many concurrent requests cause one call to
the provider.
"""

import time

from django.conf import settings
from django.core.cache import cache

from connections.lifecycle import lease
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import Connection, PrivateApp

Status = Connection.Status
# The floor's cache value while the claiming request refreshes, and after.
RUNNING, DONE = "running", "done"
FAILED = {
    Outcome.RETRY_SCHEDULED,
    Outcome.NEEDS_REAUTH,
    Outcome.APP_CREDENTIALS_INVALID,
    Outcome.SKIPPED,
}


class TokenUnavailable(Exception):
    """No valid token can be given: `reason` says why (needs_reauth, revoked, app_disabled,
    provider_down, busy)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _usable(conn: Connection) -> Connection:
    if conn.status in (Status.NEEDS_REAUTH, Status.REVOKED):
        raise TokenUnavailable(conn.status, conn.last_error or conn.get_status_display())
    if conn.app.status == PrivateApp.Status.DISABLED:
        raise TokenUnavailable("app_disabled", f"the app {conn.app.name} is disabled")
    return conn


def _floor_key(conn: Connection) -> str:
    # With its creation time: a database restored or recreated may reuse ids.
    return f"on-demand-refresh:{conn.pk}:{conn.created_at.timestamp()}"


def _floor_free(conn: Connection) -> bool:
    """Claim this connection's on-demand refresh for the next floor seconds; False when
    another request already did (shared by every web process through the cache)."""
    floor = settings.ON_DEMAND_REFRESH_FLOOR
    return floor <= 0 or cache.add(_floor_key(conn), RUNNING, timeout=floor)


def _floor_done(conn: Connection) -> None:
    if settings.ON_DEMAND_REFRESH_FLOOR > 0:
        cache.set(_floor_key(conn), DONE, timeout=settings.ON_DEMAND_REFRESH_FLOOR)


def _after_refresher(rows, conn: Connection, wait_seconds: float) -> Connection:
    """The connection once the request that claimed the floor has finished its refresh (and
    its lease is let go), or as it is after the wait."""
    deadline = time.monotonic() + wait_seconds
    while True:
        # The cache first: once it says the refresh finished, the row read after it holds
        # that refresh's outcome.
        running = cache.get(_floor_key(conn)) == RUNNING
        conn = rows.get(pk=conn.pk)
        if (not running and not conn.lease_owner) or time.monotonic() > deadline:
            return conn
        time.sleep(lease.POLL_SECONDS)


def connection_token(connection_id: int, *, tenant_id: int, wait_seconds: float) -> Connection:
    """The tenant's connection with a usable access token; Connection.DoesNotExist when no
    such connection exists in that tenant. Raises TokenUnavailable. The refresh token is not
    read: callers never need it, and a refresh loads the row afresh."""
    rows = (
        Connection.objects.select_related("app").defer("refresh_token").filter(tenant_id=tenant_id)
    )
    conn = _usable(rows.get(pk=connection_id))
    if conn.access_token_valid():
        return conn
    outcome = None
    if _floor_free(conn):
        try:
            outcome = refresh_connection(connection_id, reason="on_demand")
        finally:
            _floor_done(conn)
    if outcome in (None, Outcome.BUSY):
        conn = _after_refresher(rows, conn, wait_seconds)
    else:
        conn = rows.get(pk=connection_id)
    conn = _usable(conn)
    if conn.access_token_valid():
        return conn
    # Inside the margin: served when the provider answered with a short-lived token or the
    # floor held this request back; not when this request's refresh just failed.
    if conn.access_token_live() and outcome not in FAILED:
        return conn
    if conn.lease_owner:
        raise TokenUnavailable("busy", "a refresh is under way; try again shortly")
    raise TokenUnavailable("provider_down", conn.last_error or "the provider did not answer")
