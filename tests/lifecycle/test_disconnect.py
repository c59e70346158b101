"""Disconnect and refresh never interleave: a disconnect waits for a refresh in flight and
revokes what it stored; a refresh that answers after a disconnect cannot revive it."""

import threading
import time

import pytest
from django.utils import timezone

from connections.lifecycle import lease
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.lifecycle.revoke import RefreshUnderWay, disconnect
from connections.lifecycle.store import store_tokens
from connections.models import AuditEvent, Connection
from connections.oauth import TokenSet
from sandbox import faults
from sandbox.models import Token

pytestmark = pytest.mark.django_db(transaction=True)
Status = Connection.Status


def live_tokens_at_provider(app) -> int:
    now = timezone.now()
    return (
        Token.objects.filter(client__client_id=app.client_id, revoked_at__isnull=True)
        .filter(used_at__isnull=True, expires_at__gt=now)
        .count()
    )


def wait_for_lease(conn, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not Connection.objects.filter(pk=conn.pk).exclude(lease_owner="").exists():
        assert time.monotonic() < deadline, "the refresh never took the lease"
        time.sleep(0.02)


def test_a_disconnect_waits_for_the_refresh_in_flight_and_revokes_its_tokens(make_app, connect):
    app = make_app("manus")
    conn = connect(app)
    faults.inject(provider="manus", client_id=app.client_id, kind="latency", latency_ms=1000)
    outcomes = []
    refresher = threading.Thread(
        target=lambda: outcomes.append(refresh_connection(conn.pk, reason="manual", force=True))
    )
    refresher.start()
    wait_for_lease(conn)

    message = disconnect(conn=conn, actor=None)
    refresher.join(30)

    assert outcomes == [Outcome.REFRESHED]
    assert message.startswith("Revoked at the provider")
    conn.refresh_from_db()
    assert conn.status == Status.REVOKED and conn.refresh_token is None
    assert conn.lease_owner == ""
    # The pair the refresh stored was the one revoked: nothing is left alive at the provider.
    assert live_tokens_at_provider(app) == 0
    kinds = set(AuditEvent.objects.filter(connection=conn).values_list("kind", flat=True))
    assert {AuditEvent.Kind.REFRESHED, AuditEvent.Kind.REVOKED} <= kinds


def test_a_disconnect_gives_up_while_a_live_refresh_holds_the_lease(make_app, connect):
    conn = connect(make_app("manus"))
    assert lease.acquire(conn, owner="a-refresh")

    with pytest.raises(RefreshUnderWay):
        disconnect(conn=conn, actor=None, wait_seconds=0.2)

    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE and conn.refresh_token
    assert conn.lease_owner == "a-refresh"


def test_a_refresh_answering_after_its_lease_lapsed_cannot_revive_a_disconnect(make_app, connect):
    conn = connect(make_app("manus"))
    assert lease.acquire(conn, owner="stalled")
    Connection.objects.filter(pk=conn.pk).update(lease_expires_at=timezone.now())
    disconnect(conn=conn, actor=None)

    late = TokenSet("at-late", "Bearer", "rt-late", 3600, "", "")
    store_tokens(conn=conn, tokens=late, lease_owner="stalled")

    conn.refresh_from_db()
    # Stored (the provider honours only these), but disconnected and never scheduled.
    assert conn.access_token == "at-late" and conn.refresh_token == "rt-late"
    assert conn.status == Status.REVOKED and conn.next_refresh_at is None
    assert refresh_connection(conn.pk, reason="manual", force=True) == Outcome.SKIPPED
