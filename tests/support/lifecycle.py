"""Helpers for the lifecycle tests: make a connection due, spend its refresh token elsewhere,
run refreshes side by side or in the background, and count what reached the provider."""

import threading

from django.db import connection as db_connection
from django.utils import timezone

from connections import oauth
from connections.lifecycle import connection_refresh
from connections.oauth import TokenSet
from sandbox import faults, registry
from tests.support.waiting import wait_for


def expire_access_token(conn) -> None:
    type(conn).objects.filter(pk=conn.pk).update(
        access_expires_at=timezone.now() - timezone.timedelta(seconds=1),
        next_refresh_at=timezone.now() - timezone.timedelta(seconds=1),
    )


def provider_refresh(conn) -> TokenSet:
    """What a stalled worker's request did: spend the connection's refresh token at the
    provider over HTTP, the answer kept here instead of stored."""
    app = conn.app
    creds = oauth.credentials_for(app, app.active_secrets()[0].value)
    return oauth.refresh(app, creds, refresh_token=conn.refresh_token)


def refresh_requests(app) -> int:
    """Refresh-token calls that reached the sandbox's token endpoint for this app."""
    return registry.token_request_count(app.provider, app.client_id, grant_type="refresh_token")


def run_concurrently(n: int, fn):
    """fn(0) … fn(n - 1) in n threads released together; their results, in order."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def in_thread(fn) -> tuple[threading.Thread, list]:
    """fn() in a daemon thread; the list gets its result, or the exception it raised."""
    result: list = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def slow_refresh_in_flight(conn) -> tuple[threading.Thread, list]:
    """A forced refresh in a thread, its request in the provider's hands for 1.5 s."""
    app = conn.app
    faults.inject(provider=app.provider, client_id=app.client_id, kind="latency", latency_ms=1500)
    refresher = in_thread(lambda: connection_refresh(conn.pk, reason="manual", force=True))
    wait_for(lambda: refresh_requests(app) == 1, timeout=10)
    return refresher
