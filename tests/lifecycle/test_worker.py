"""A real Celery worker: beat's picker enqueues due refreshes; a killed worker loses nothing."""

import os
import signal

import pytest
from django.utils import timezone

from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import AuditEvent, Connection
from connections.tasks import enqueue_due_refreshes
from sandbox import faults, registry
from tests.support.lifecycle import expire_access_token
from tests.support.waiting import wait_for
from tests.support.worker import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_beat_picker_enqueues_due_connections_and_a_worker_refreshes_them(
    make_sandbox_app, mint_connection
):
    app = make_sandbox_app("manu_online")
    due = [mint_connection(app) for _ in range(3)]
    not_due = mint_connection(app)
    for conn in due:
        expire_access_token(conn)

    with celery_worker(concurrency=2):
        assert enqueue_due_refreshes() == 3
        assert enqueue_due_refreshes() == 0  # already queued: not queued twice
        wait_for(
            lambda: (
                Connection.objects.filter(pk__in=[c.pk for c in due], refresh_count=1).count() == 3
            ),
            timeout=60,
        )
    for conn in due:
        conn.refresh_from_db()
        assert conn.next_refresh_at > timezone.now()
        assert registry.refresh_token_is_active("manu_online", conn.refresh_token)
    not_due.refresh_from_db()
    assert not_due.refresh_count == 0


# A short lease and deadline, so a dead worker's lease lapses within seconds.
SHORT_LEASE = {"REFRESH_LEASE_SECONDS": "3", "PROVIDER_DEADLINE": "4", "LEASE_MARGIN_SECONDS": "1"}
BEAT_SECONDS = 2


def test_a_worker_killed_mid_refresh_is_recovered_by_the_beat_within_lease_and_two_beats(
    make_sandbox_app, mint_connection, settings
):
    settings.REFRESH_LEASE_SECONDS, settings.PROVIDER_DEADLINE = 3, 4
    settings.LEASE_MARGIN_SECONDS = 1
    conn = mint_connection(make_sandbox_app("manu_online"))
    client_id = conn.app.client_id
    faults.inject(provider="manu_online", client_id=client_id, kind="latency", latency_ms=2500)
    expire_access_token(conn)

    with celery_worker(extra_env=SHORT_LEASE) as worker:
        assert enqueue_due_refreshes() == 1  # the beat's tick
        wait_for(
            lambda: Connection.objects.filter(pk=conn.pk).exclude(lease_owner="").exists(),
            timeout=60,
        )
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    killed_at = timezone.now()
    # While the dead worker's lease lives, nobody else sends the token.
    assert refresh_connection(conn.pk, reason="manual", force=True) == Outcome.BUSY
    assert enqueue_due_refreshes() == 0

    with celery_worker(extra_env=SHORT_LEASE):
        # The lease (extended over one deadline plus the margin) lapses within 5 s; then the
        # picker takes the row although it was queued a moment ago. No token-API call.

        def beat_tick_then_refreshed() -> bool:
            enqueue_due_refreshes()
            # Not "no longer queued": a task that found the row busy (the dead worker's
            # message, redelivered beside the tick's) unclaims it too, with nothing done.
            row = Connection.objects.get(pk=conn.pk)
            return (
                row.last_refreshed_at > killed_at or row.status == Connection.Status.NEEDS_REAUTH
            ) and row.refresh_enqueued_at is None

        # The beat ticks every BEAT_SECONDS until a worker has refreshed the row.
        wait_for(beat_tick_then_refreshed, timeout=90, every=BEAT_SECONDS)

    conn.refresh_from_db()
    assert conn.last_refreshed_at > killed_at or conn.status == Connection.Status.NEEDS_REAUTH
    if conn.status == Connection.Status.NEEDS_REAUTH:
        # The provider consumed the token for the dead worker: classified, with the reason.
        assert "worker died" in conn.last_error
        assert AuditEvent.objects.filter(connection=conn, kind="reauth_needed").exists()
    else:  # killed before its request reached the provider: refreshed by the next worker
        assert conn.status == Connection.Status.ACTIVE
        assert registry.refresh_token_is_active("manu_online", conn.refresh_token)
    assert registry.most_presented("manu_online", client_id) <= 2  # the dead one's, then ours


def slow_due_connections(make_sandbox_app, mint_connection, n: int, *, latency_ms: int):
    """`n` due connections of a new app whose token calls are slow enough to overlap."""
    app = make_sandbox_app("manu_online")
    conns = [mint_connection(app) for _ in range(n)]
    faults.inject(
        provider="manu_online",
        client_id=app.client_id,
        kind="latency",
        latency_ms=latency_ms,
        count=n,
    )
    for conn in conns:
        expire_access_token(conn)
    return app, conns


def refresh_all_counting_leases(app, conns, *, concurrency: int) -> int:
    """The beat's tick, then a thread-pool worker until each of `conns` was refreshed once;
    the most leases held at once meanwhile."""
    leased = Connection.objects.filter(app=app).exclude(lease_owner="")
    most_at_once = 0

    def all_refreshed() -> bool:
        nonlocal most_at_once
        most_at_once = max(most_at_once, leased.count())
        return Connection.objects.filter(app=app, refresh_count=1).count() == len(conns)

    with celery_worker(concurrency=concurrency, pool="threads", queues="celery"):
        assert enqueue_due_refreshes() == len(conns)
        wait_for(all_refreshed, timeout=90, every=0.05)
    return most_at_once


def test_a_thread_pool_worker_holds_many_refreshes_in_flight_each_token_sent_once(
    make_sandbox_app, mint_connection
):
    """The Procfile's worker: one process, many threads, each refresh its own lease."""
    app, conns = slow_due_connections(make_sandbox_app, mint_connection, 12, latency_ms=800)
    # several leases held at once, by one worker process
    assert refresh_all_counting_leases(app, conns, concurrency=12) > 1
    assert registry.most_presented("manu_online", app.client_id) == 1
    for conn in conns:
        conn.refresh_from_db()
        assert registry.refresh_token_is_active("manu_online", conn.refresh_token)


def test_batches_of_claimed_connections_run_side_by_side_each_token_sent_once(
    make_sandbox_app, mint_connection, settings
):
    """Two threads, six due: two tasks of three, each refreshing its three in turn."""
    settings.REFRESH_THREADS = 2
    app, conns = slow_due_connections(make_sandbox_app, mint_connection, 6, latency_ms=400)
    # both batches at once, one refresh of each at a time
    assert refresh_all_counting_leases(app, conns, concurrency=2) == 2
    assert registry.most_presented("manu_online", app.client_id) == 1
    assert not Connection.objects.filter(app=app, refresh_enqueued_at__isnull=False).exists()
