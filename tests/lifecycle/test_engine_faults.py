"""The refresh engine under faults, in-process against the sandbox over HTTP: short-lived
tokens, an answer trickled past the lease, a reconnect or a scopes change racing a refresh."""

import time

import pytest
import requests
from django.db import connection as database
from django.db.models.functions import Now
from django.utils import timezone

from connections import apikeys
from connections.lifecycle import Outcome, connection_refresh, connections_mark_reauth, lease
from connections.lifecycle import obtain as obtain_module
from connections.models import AuditEvent, Connection
from connections.tasks import enqueue_due_refreshes
from sandbox import faults, registry
from tests import factories
from tests.support.lifecycle import (
    expire_access_token,
    in_thread,
    provider_refresh,
    refresh_requests,
    slow_refresh_in_flight,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = Connection.Status


def live_hashes(app) -> set[str]:
    return set(registry.live_refresh_tokens(app.provider, app.client_id))


def test_ten_second_tokens_one_token_request_makes_at_most_one_refresh(
    make_sandbox_app, mint_connection, portal_url, acme, alice
):
    # The provider's access tokens live 10 s: a fixed 30 s margin made every token look stale
    # and one request looped, refreshing hundreds of times.
    app = make_sandbox_app("manu_online", access_lifetime=10)
    conn = mint_connection(app)
    key = apikeys.create(tenant=acme, name="svc", actor=alice).plaintext
    url = f"{portal_url}/api/v1/connections/{conn.pk}/token"
    expire_access_token(conn)

    def get():
        before = refresh_requests(app)
        response = requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        return response, refresh_requests(app) - before

    response, refreshes = get()
    assert response.status_code == 200 and refreshes == 1
    assert response.json()["expires_in"] > 0
    for _ in range(10):  # ten requests a second apart, as a busy service would make them
        time.sleep(1)  # the cadence is the scenario, not a wait for something
        response, refreshes = get()
        assert response.status_code == 200, response.content
        assert refreshes <= 1
    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE
    assert registry.most_presented("manu_online", app.client_id) == 1


def test_an_answer_trickled_past_the_first_lease_is_waited_for_and_never_sent_twice(
    make_sandbox_app, mint_connection, settings
):
    # The provider's answer takes longer than REFRESH_LEASE_SECONDS to arrive; a refresh's
    # lease covers the request's whole deadline from the send, so nobody takes over.
    settings.REFRESH_LEASE_SECONDS, settings.PROVIDER_DEADLINE = 2, 8
    settings.LEASE_MARGIN_SECONDS = 2
    app = make_sandbox_app("manu_online")
    conn = mint_connection(app)
    first = conn.refresh_token
    faults.inject(provider="manu_online", client_id=app.client_id, kind="trickle", latency_ms=4000)
    expire_access_token(conn)

    refresher, outcomes = in_thread(
        lambda: connection_refresh(conn.pk, reason="scheduled", force=False)
    )
    wait_for(lambda: refresh_requests(app) == 1, timeout=10)
    time.sleep(3)  # modelled: longer than REFRESH_LEASE_SECONDS while the answer trickles
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.BUSY
    assert enqueue_due_refreshes() == 0
    refresher.join(30)

    assert outcomes == [Outcome.REFRESHED]
    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE
    assert registry.presentations("manu_online", first) == 1
    assert registry.most_presented("manu_online", app.client_id) == 1
    assert registry.refresh_token_is_active("manu_online", conn.refresh_token)


@pytest.mark.parametrize("reconnect_wait", [20.0, 0.1], ids=["waits", "takes-over"])
def test_a_reconnect_racing_a_refresh_keeps_the_new_grant_and_revokes_the_older_pair(
    make_sandbox_app, mint_connection, alice, monkeypatch, reconnect_wait
):
    monkeypatch.setattr(obtain_module, "RECONNECT_WAIT_SECONDS", reconnect_wait)
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    refresher, outcomes = slow_refresh_in_flight(conn)

    reconnected = factories.minted_connection(app, user=alice, reconnect=conn)
    refresher.join(30)

    assert reconnected.pk == conn.pk
    conn.refresh_from_db()
    assert conn.status == Status.ACTIVE
    # Only the new grant is alive at the provider, and it is the one stored.
    assert live_hashes(app) == {conn.refresh_token_hash}
    assert registry.refresh_token_is_active("manus", conn.refresh_token)
    kinds = set(AuditEvent.objects.filter(connection=conn).values_list("kind", flat=True))
    assert AuditEvent.Kind.GRANT_REPLACED in kinds
    if reconnect_wait > 2:  # it waited: the refresh stored its pair, the reconnect revoked it
        assert outcomes == [Outcome.REFRESHED]
    else:
        # It took over: the refresh sends nothing more, and whatever it gets back (a pair of
        # an older generation, or a refusal of the grant revoked meanwhile) is not stored.
        assert outcomes == [Outcome.SUPERSEDED]


def test_scopes_widened_during_a_refresh_are_not_undone_by_it(
    make_sandbox_app, mint_connection, alice
):
    app = make_sandbox_app("manus")
    conn = mint_connection(app)
    refresher, outcomes = slow_refresh_in_flight(conn)

    marked = connections_mark_reauth(app=app, why="scopes widened", actor=alice, message="")
    refresher.join(30)

    assert marked == 1
    conn.refresh_from_db()
    assert conn.status == Status.NEEDS_REAUTH and conn.next_refresh_at is None
    # The answer was still stored (the newest pair stays referenced, never orphaned).
    assert live_hashes(app) == {conn.refresh_token_hash}
    assert outcomes == [Outcome.REFRESHED]


def test_a_stale_read_cannot_take_the_lease(make_sandbox_app, mint_connection):
    conn = mint_connection(make_sandbox_app("manu_online"))
    stale = Connection.objects.get(pk=conn.pk)
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.REFRESHED

    # Free lease, but the row moved on since it was read: the old token must not be sent.
    assert not lease.acquire(stale, owner="late")
    assert Connection.objects.get(pk=conn.pk).lease_owner == ""


def test_an_extension_fails_once_another_writer_took_the_row(make_sandbox_app, mint_connection):
    conn = mint_connection(make_sandbox_app("manu_online"))
    assert lease.acquire(conn, owner="first")
    Connection.objects.filter(pk=conn.pk).update(lease_expires_at=timezone.now())
    other = Connection.objects.get(pk=conn.pk)
    assert lease.acquire(other, owner="second")  # the first's lease lapsed

    with pytest.raises(lease.LeaseLost):
        lease.extend(conn, owner="first")


def test_the_take_covers_the_first_request_and_every_later_one_is_extended(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    taken_at = time.monotonic()
    assert lease.acquire(conn, owner="holder", seconds=lease.Cover.take_seconds())
    cover = lease.Cover(conn, owner="holder", taken_at=taken_at)
    taken = Connection.objects.get(pk=conn.pk).version

    cover()  # the first request, right after the take: no statement
    assert Connection.objects.get(pk=conn.pk).version == taken
    cover()  # a resend, or the next secret: extended by compare-and-set
    assert Connection.objects.get(pk=conn.pk).version == taken + 1

    Connection.objects.filter(pk=conn.pk).update(version=taken + 5)  # another writer
    with pytest.raises(lease.LeaseLost):
        cover()


def test_a_first_request_past_the_takes_window_is_extended_or_not_sent(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    # as after a rate-limit wait or a stall between the take and the send
    taken_at = time.monotonic() - lease.Cover.window_seconds() - 0.5
    assert lease.acquire(conn, owner="holder", seconds=lease.Cover.take_seconds())
    Connection.objects.filter(pk=conn.pk).update(version=conn.version + 1)  # another writer

    with pytest.raises(lease.LeaseLost):
        lease.Cover(conn, owner="holder", taken_at=taken_at)()


def test_a_refresh_sends_its_first_request_under_the_take_alone_which_covers_its_deadline(
    make_sandbox_app, mint_connection, monkeypatch, settings
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    extended, seen = [], []
    monkeypatch.setattr(lease, "extend", lambda conn, owner: extended.append(conn.pk))
    covered = lease.Cover.__call__

    def at_the_send(cover):
        covered(cover)
        seen.append(
            Connection.objects.filter(pk=conn.pk)
            .annotate(now=Now())
            .values_list("lease_expires_at", "now")
            .get()
        )

    monkeypatch.setattr(lease.Cover, "__call__", at_the_send)

    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.REFRESHED
    assert extended == [] and refresh_requests(conn.app) == 1
    [(expires, now)] = seen
    # Past the request's deadline by the margin, and not by REFRESH_LEASE_SECONDS: a holder
    # that dies after sending frees the connection about as soon as with an extension.
    lasts = (expires - now).total_seconds()
    floor = settings.PROVIDER_DEADLINE + settings.LEASE_MARGIN_SECONDS
    assert floor <= lasts <= floor + lease.Cover.window_seconds()


@pytest.mark.skipif(database.vendor != "postgresql", reason="the three statements of PostgreSQL")
def test_a_refresh_is_three_statements_load_take_and_store_with_its_event(
    make_sandbox_app, mint_connection, django_assert_num_queries
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    with django_assert_num_queries(3) as queries:
        assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.REFRESHED
    load, take, store = (q["sql"] for q in queries.captured_queries)
    assert "connections_clientsecret" in load and take.startswith("UPDATE")
    assert store.startswith("WITH") and refresh_requests(conn.app) == 1


def test_a_refresh_with_nothing_to_do_sends_nothing_and_lets_the_lease_go(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    Connection.objects.filter(pk=conn.pk).update(
        next_refresh_at=timezone.now() + timezone.timedelta(hours=1)
    )
    assert connection_refresh(conn.pk, reason="scheduled") == Outcome.FRESH
    Connection.objects.filter(pk=conn.pk).update(status=Status.NEEDS_REAUTH)
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.SKIPPED

    assert refresh_requests(conn.app) == 0
    assert Connection.objects.get(pk=conn.pk).lease_owner == ""


def test_a_reauth_notice_is_queued_after_the_write_and_the_lease_never_sent_in_the_request(
    make_sandbox_app, mint_connection, alice, monkeypatch
):
    from django.core import mail

    from connections import tasks
    from connections.lifecycle import TokenUnavailable, connection_token

    alice.email = "alice@example.test"
    alice.save()
    conn = mint_connection(make_sandbox_app("manu_online"))
    provider_refresh(conn)  # the stored token is spent elsewhere: the next refresh is refused
    expire_access_token(conn)
    queued = []

    def record(*args):
        row = Connection.objects.get(pk=conn.pk)
        queued.append((args, row.status, row.lease_owner))

    monkeypatch.setattr(tasks.send_alert, "delay", record)
    with pytest.raises(TokenUnavailable):
        connection_token(conn.pk, tenant_id=conn.tenant_id, wait_seconds=1)

    assert mail.outbox == []  # the request sent nothing itself
    [(args, status, lease_owner)] = queued
    assert "needs re-authorisation" in args[1]
    assert status == Status.NEEDS_REAUTH and lease_owner == ""  # after the write and the lease
