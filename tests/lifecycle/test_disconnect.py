"""Disconnect and refresh never interleave: a disconnect waits for a refresh in flight and
revokes what it stored; a refresh that answers after a disconnect cannot revive it. A
revocation the provider does not confirm is retried by the beat, never silently dropped."""

import threading

import pytest
from django.utils import timezone

from connections import tasks
from connections.lifecycle import lease, provider_calls
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.lifecycle.revoke import (
    MAX_REVOKE_TRIES,
    RefreshUnderWay,
    Revocation,
    disconnect,
    retry_revocation,
)
from connections.lifecycle.store import Stored, store_answer
from connections.lifecycle.tokens import TokenUnavailable, connection_token
from connections.models import AuditEvent, Connection
from sandbox import faults, registry
from sandbox.models import Client as SandboxClient
from sandbox.models import Token
from tests import factories
from tests.support.lifecycle import provider_refresh
from tests.support.waiting import wait_for

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
    wait_for(
        lambda: Connection.objects.filter(pk=conn.pk).exclude(lease_owner="").exists(),
        timeout=seconds,
        every=0.02,
        message="the refresh never took the lease",
    )


def test_a_disconnect_waits_for_the_refresh_in_flight_and_revokes_its_tokens(
    make_sandbox_app, mint_connection
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    faults.inject(provider="manus", client_id=app.client_id, kind="latency", latency_ms=1000)
    outcomes = []
    refresher = threading.Thread(
        target=lambda: outcomes.append(refresh_connection(conn.pk, reason="manual", force=True))
    )
    refresher.start()
    wait_for_lease(conn)

    message = disconnect(conn=conn, actor=None).message
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


def test_a_disconnect_gives_up_while_a_live_refresh_holds_the_lease(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manus"))
    assert lease.acquire(conn, owner="a-refresh")

    with pytest.raises(RefreshUnderWay):
        disconnect(conn=conn, actor=None, wait_seconds=0.2)

    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE and conn.refresh_token
    assert conn.lease_owner == "a-refresh"


def stalled_refresh(conn):
    """A worker took the lease and its refresh reached the provider, which rotated the pair;
    then the worker stalled and its lease lapsed. The hash it sent, and the pair it holds."""
    sent = conn.refresh_token_hash
    assert lease.acquire(conn, owner="stalled")
    late_pair = provider_refresh(conn)
    Connection.objects.filter(pk=conn.pk).update(lease_expires_at=timezone.now())
    return sent, late_pair


def test_a_refresh_answering_after_its_lease_lapsed_cannot_revive_a_disconnect(
    make_sandbox_app, mint_connection
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    sent, late_pair = stalled_refresh(conn)
    # Meanwhile a person disconnected.
    disconnect(conn=conn, actor=None)

    stored = store_answer(conn=conn, tokens=late_pair, sent_hash=sent, owner="stalled")

    assert stored == Stored.ORPHANED
    conn.refresh_from_db()
    assert conn.status == Status.REVOKED and conn.refresh_token is None
    assert conn.next_refresh_at is None
    # The late pair was live at the provider and referenced nowhere: revoked there.
    assert not registry.refresh_token_is_active("manus", late_pair.refresh_token)
    assert live_tokens_at_provider(app) == 0
    assert AuditEvent.objects.filter(connection=conn, kind="tokens_orphaned").exists()
    assert refresh_connection(conn.pk, reason="manual", force=True) == Outcome.SKIPPED


def test_a_late_answer_into_a_pending_disconnect_is_revoked_at_once(
    make_sandbox_app, mint_connection, refusing_revocations
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    sent, late_pair = stalled_refresh(conn)
    refusing_revocations(app)
    assert not disconnect(conn=conn, actor=None).confirmed  # the old pair is kept to revoke
    refusing_revocations(app, refusing=False)

    assert store_answer(conn=conn, tokens=late_pair, sent_hash=sent, owner="stalled") == (
        Stored.STORED
    )

    conn.refresh_from_db()
    assert conn.status == Status.REVOKED
    assert conn.revoke_retry_at <= timezone.now()  # due at the very next beat
    assert tasks.retry_revocations() == 1
    assert not registry.refresh_token_is_active("manus", late_pair.refresh_token)
    assert live_tokens_at_provider(app) == 0


@pytest.fixture
def refusing_revocations(monkeypatch):
    """The Manus sandbox answers every token and revoke request of the app with 429."""
    monkeypatch.setattr(provider_calls, "INTERACTIVE_RATE_LIMIT_WAIT", 0.2)

    def refuse(app, *, refusing=True):
        SandboxClient.objects.filter(client_id=app.client_id).update(
            rate_limit=0 if refusing else None
        )

    return refuse


def make_due(conn) -> None:
    Connection.objects.filter(pk=conn.pk).update(
        revoke_retry_at=timezone.now() - timezone.timedelta(seconds=1)
    )


def test_an_unconfirmed_revocation_is_retried_by_the_beat_until_the_provider_confirms(
    make_sandbox_app, mint_connection, refusing_revocations
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    refusing_revocations(app)

    done = disconnect(conn=conn, actor=None)

    assert not done.confirmed and "retried in the background" in done.message
    conn.refresh_from_db()
    assert conn.status == Status.REVOKED and conn.failure_count == 1
    assert conn.revoke_retry_at > timezone.now()
    # Kept for the retry, alive at the provider, but never handed out.
    assert registry.refresh_token_is_active("manus", conn.refresh_token)
    with pytest.raises(TokenUnavailable):
        connection_token(conn.pk, tenant_id=conn.tenant_id, wait_seconds=1)
    assert tasks.retry_revocations() == 0  # not due yet

    make_due(conn)
    assert retry_revocation(conn.pk) == Revocation.PENDING
    conn.refresh_from_db()
    assert conn.failure_count == 2 and conn.refresh_token

    refusing_revocations(app, refusing=False)
    make_due(conn)
    assert tasks.retry_revocations() == 1

    kept = conn.refresh_token
    conn.refresh_from_db()
    assert conn.refresh_token is None and conn.access_token is None
    assert conn.revoke_retry_at is None and conn.failure_count == 0
    assert not registry.refresh_token_is_active("manus", kept)
    kinds = list(AuditEvent.objects.filter(connection=conn).values_list("kind", flat=True))
    assert kinds.count(AuditEvent.Kind.REVOKE_FAILED) == 1
    assert kinds.count(AuditEvent.Kind.REVOKED) == 2


def test_revocation_retries_give_up_and_say_so(
    make_sandbox_app, mint_connection, refusing_revocations
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    refusing_revocations(app)
    disconnect(conn=conn, actor=None)
    Connection.objects.filter(pk=conn.pk).update(failure_count=MAX_REVOKE_TRIES - 1)
    make_due(conn)

    assert retry_revocation(conn.pk) == Revocation.UNCONFIRMED

    conn.refresh_from_db()
    assert conn.refresh_token is None and conn.revoke_retry_at is None
    assert f"after {MAX_REVOKE_TRIES} tries" in conn.events.first().message


def test_a_reconnect_ends_a_pending_revocation(
    make_sandbox_app, mint_connection, alice, refusing_revocations
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    refusing_revocations(app)
    disconnect(conn=conn, actor=None)
    refusing_revocations(app, refusing=False)

    factories.minted_connection(app, user=alice, reconnect=Connection.objects.get(pk=conn.pk))
    again = Connection.objects.get(pk=conn.pk)

    assert again.status == Status.ACTIVE
    assert again.revoke_retry_at is None
    assert tasks.retry_revocations() == 0
