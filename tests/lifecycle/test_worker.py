"""A real Celery worker: beat's picker enqueues due refreshes; a killed worker loses nothing."""

import os
import signal

import pytest
from django.utils import timezone

from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import AuditEvent, Connection
from connections.tasks import enqueue_due_refreshes, refresh_connection_task
from sandbox import faults, registry
from tests.lifecycle.conftest import expire_access_token
from tests.support.worker import celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_beat_picker_enqueues_due_connections_and_a_worker_refreshes_them(make_app, connect):
    app = make_app("manu_online")
    due = [connect(app) for _ in range(3)]
    not_due = connect(app)
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


def test_a_worker_killed_mid_refresh_never_reuses_a_token_concurrently(make_app, connect, settings):
    settings.REFRESH_LEASE_SECONDS = 10
    conn = connect(make_app("manu_online"))
    client_id = conn.app.client_id
    faults.inject(provider="manu_online", client_id=client_id, kind="latency", latency_ms=3000)
    expire_access_token(conn)

    with celery_worker(extra_env={"REFRESH_LEASE_SECONDS": "10"}) as worker:
        refresh_connection_task.delay(conn.pk, "manual")
        wait_for(
            lambda: Connection.objects.filter(pk=conn.pk).exclude(lease_owner="").exists(),
            timeout=60,
        )
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    # While the dead worker's lease lives, nobody else sends the token.
    assert refresh_connection(conn.pk, reason="manual", force=True) == Outcome.BUSY
    wait_for(
        lambda: Connection.objects.get(pk=conn.pk).lease_expires_at < timezone.now(), timeout=15
    )
    outcome = refresh_connection(conn.pk, reason="manual", force=True)
    conn.refresh_from_db()
    if outcome == Outcome.REFRESHED:  # killed before its request reached the provider
        assert registry.refresh_token_is_active("manu_online", conn.refresh_token)
    else:  # the provider consumed the token for the dead worker: classified, with the reason
        assert outcome == Outcome.NEEDS_REAUTH
        assert "worker died" in conn.last_error
        assert AuditEvent.objects.filter(connection=conn, kind="reauth_needed").exists()
