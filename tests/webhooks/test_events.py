"""The portal's own events reach the app's listener once each, after commit and after the
lease, with an idempotency id, the connection and its account; against the sandbox provider
over HTTP, sent by the deliver task run inline."""

import pytest
from django.db import transaction
from django.utils import timezone

from connections import webhook_events
from connections.lifecycle import (
    Outcome,
    connection_disconnect,
    connection_refresh,
    connections_mark_reauth,
)
from connections.models import ClientSecret, Connection, OutboundDelivery
from connections.webhook_events import EventType
from sandbox import faults
from tests import factories
from tests.support.lifecycle import provider_refresh

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(portal_url, acme, listener, listen, tasks_inline):
    return listen(factories.sandbox_app(acme, "manu_online", portal_url), listener)


def heard_types(listener) -> list[str]:
    return [r.document["type"] for r in listener.received]


def refresh(conn) -> str:
    return connection_refresh(conn.pk, reason="manual", force=True)


def test_needing_reauthorisation_and_recovering_each_produce_one_event(app, listener, alice):
    conn = factories.minted_connection(app, user=alice)
    assert heard_types(listener) == [EventType.CREATED]

    provider_refresh(conn)  # the stored refresh token is spent elsewhere
    assert refresh(conn) == Outcome.NEEDS_REAUTH
    assert refresh(conn) == Outcome.SKIPPED  # still needing it: nothing new to tell
    connections_mark_reauth(app=app, why="scopes widened", actor=alice, message="x.")
    assert heard_types(listener) == [EventType.CREATED, EventType.NEEDS_REAUTH]

    factories.minted_connection(app, user=alice, reconnect=conn)
    assert heard_types(listener)[-1] == EventType.RECOVERED
    documents = [r.document for r in listener.received]
    assert len({d["id"] for d in documents}) == 3  # an idempotency id each
    for document in documents:
        assert document["data"]["connection"]["id"] == conn.pk
        assert document["data"]["connection"]["account_id"] == conn.account_id
        assert document["id"] == listener.received[documents.index(document)].headers["webhook-id"]
    assert all(r.verified for r in listener.received)


def test_a_failed_refresh_then_a_good_one_are_refresh_failed_then_recovered(app, listener, alice):
    conn = factories.minted_connection(app, user=alice)
    faults.inject(provider="manu_online", client_id=app.client_id, kind="error_5xx")
    assert refresh(conn) != Outcome.REFRESHED
    conn.refresh_from_db()
    assert conn.status == Connection.Status.FAILING
    assert refresh(conn) == Outcome.REFRESHED
    assert heard_types(listener) == [
        EventType.CREATED,
        EventType.REFRESH_FAILED,
        EventType.RECOVERED,
    ]  # no "refreshed": off unless subscribed
    failed = listener.received[1].document["data"]
    assert failed["failures"] == 1 and "502" in failed["error"]


def test_refreshed_is_sent_when_subscribed(app, listener, listen, alice):
    listen(app, listener, listener_events=[EventType.REFRESHED])
    conn = factories.minted_connection(app, user=alice)
    assert refresh(conn) == Outcome.REFRESHED
    assert heard_types(listener) == [EventType.REFRESHED]


def test_events_leave_after_the_lease_is_released(app, listener, alice, monkeypatch):
    conn = factories.minted_connection(app, user=alice)
    faults.inject(provider="manu_online", client_id=app.client_id, kind="error_5xx")
    leases = []
    queue = webhook_events.queue_send

    def spy(pk):
        leases.append(Connection.objects.values_list("lease_owner", flat=True).get(pk=conn.pk))
        queue(pk)

    monkeypatch.setattr(webhook_events, "queue_send", spy)
    refresh(conn)
    assert leases == [""]  # queued once, with the lease already let go


def test_disconnecting_is_one_revoked_event(app, listener, alice):
    conn = factories.minted_connection(app, user=alice)
    connection_disconnect(conn=conn, actor=alice)
    assert heard_types(listener) == [EventType.CREATED, EventType.REVOKED]
    assert listener.received[1].document["data"]["revoked_at_provider"] is True


def test_rejected_app_credentials_are_one_event_for_the_app(app, listener, alice):
    conns = [factories.minted_connection(app, user=alice) for _ in range(2)]
    secret = ClientSecret.objects.get(app=app)
    secret.value = "not-the-registered-secret"
    secret.save()
    for conn in conns:
        refresh(conn)
    rejected = [
        r for r in listener.received if r.document["type"] == EventType.CREDENTIALS_REJECTED
    ]
    assert len(rejected) == 1 and rejected[0].document["data"]["connection"] is None


def test_a_lapsing_refresh_token_is_one_event_per_expiry(app, listener, alice):
    conn = factories.minted_connection(app, user=alice)
    soon = timezone.now() + timezone.timedelta(days=3)
    Connection.objects.filter(pk=conn.pk).update(refresh_expires_at=soon)
    assert webhook_events.emit_lapsing(now=timezone.now()) == 1
    assert webhook_events.emit_lapsing(now=timezone.now()) == 0  # already told
    [lapsing] = [r.document for r in listener.received if r.document["type"] == EventType.LAPSING]
    assert lapsing["data"]["connection"]["id"] == conn.pk
    # A week on, a new refresh token with its own expiry lapses in turn: told again.
    week_on = timezone.now() + timezone.timedelta(days=9)
    Connection.objects.filter(pk=conn.pk).update(
        refresh_expires_at=week_on + timezone.timedelta(days=3)
    )
    assert webhook_events.emit_lapsing(now=week_on) == 1


def test_an_event_of_a_rolled_back_change_is_never_sent(app, listener, alice):
    conn = factories.minted_connection(app, user=alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_events.emit(EventType.REFRESH_FAILED, connection=conn, error="x")
        raise RuntimeError("the change is undone")
    assert not OutboundDelivery.objects.filter(event_type=EventType.REFRESH_FAILED).exists()
    assert heard_types(listener) == [EventType.CREATED]
