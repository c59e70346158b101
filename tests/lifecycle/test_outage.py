"""The database refuses the portal's writes after the provider answered: the rotated token,
which exists only in that answer, is still stored when the database comes back, by the same
worker, or by the next worker to start when that one died (the spool)."""

import io
import os
import signal
import time

import pytest
from django.core.management import CommandError, call_command
from django.db.models.functions import Now

from connections.lifecycle import spool
from connections.models import AuditEvent, Connection
from connections.tasks import refresh_connection_task
from sandbox import faults, registry
from tests.support.lifecycle import expire_access_token
from tests.support.outage import accept_writes, refuse_writes
from tests.support.waiting import wait_for
from tests.support.worker import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
# The worker's lease covers its request's deadline plus the margin: 5 s from the send here (30 s
# with the defaults). The outage outlasts it twice, as a minute outlasts the default lease, and
# stays far inside STORE_RETRY_SECONDS (600 s): the worker that got the answer is still retrying
# when writes return. Its retries back off from 0.2 s, doubling: five fail during the outage,
# and the sixth, 12.6 s after the first try, stores.
SHORT_LEASE = {"REFRESH_LEASE_SECONDS": "3", "PROVIDER_DEADLINE": "4", "LEASE_MARGIN_SECONDS": "1"}
OUTAGE_SECONDS = 10


def refresh_during_an_outage(conn):
    """Queue a refresh, and refuse the portal's writes once the provider has the request in
    hand (it waits 1.5 s, then answers): the answer comes back to a database that says no."""
    app = conn.app
    faults.inject(provider=app.provider, client_id=app.client_id, kind="latency", latency_ms=1500)
    expire_access_token(conn)
    refresh_connection_task.delay(conn.pk, "scheduled")
    wait_for(
        lambda: (
            registry.token_request_count(app.provider, app.client_id, grant_type="refresh_token")
            == 1
        ),
        timeout=60,
    )
    refuse_writes()
    # The provider rotated the pair (the old token is spent) and the answer was spooled.
    wait_for(lambda: not registry.refresh_token_is_active(app.provider, conn.refresh_token))
    wait_for(lambda: spool.entries(conn.pk), timeout=30)


def wait_until_stored(conn, old_hash: str) -> None:
    wait_for(lambda: Connection.objects.get(pk=conn.pk).refresh_token_hash != old_hash, timeout=60)
    wait_for(lambda: not spool.entries(conn.pk), timeout=30)
    # The event is written just after the entry is dropped: stopping the worker before it
    # would lose the event, not the tokens (seen once in CI).
    spooled = AuditEvent.objects.filter(connection=conn, kind=AuditEvent.Kind.TOKENS_SPOOLED)
    wait_for(spooled.exists, timeout=30)


def assert_the_answer_was_stored(conn, old_hash: str) -> None:
    conn.refresh_from_db()
    assert conn.refresh_token_hash != old_hash
    assert conn.status == Connection.Status.ACTIVE
    assert registry.refresh_token_is_active(conn.app.provider, conn.refresh_token)
    assert registry.live_refresh_tokens(conn.app.provider, conn.app.client_id) == [
        conn.refresh_token_hash
    ]
    assert spool.entries(conn.pk) == []
    event = AuditEvent.objects.get(connection=conn, kind=AuditEvent.Kind.TOKENS_SPOOLED)
    assert "stored" in event.message


def test_tokens_refused_for_longer_than_the_lease_are_stored_when_the_database_returns(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    old_hash = conn.refresh_token_hash
    try:
        with celery_worker(extra_env=SHORT_LEASE):
            refresh_during_an_outage(conn)
            time.sleep(OUTAGE_SECONDS)  # the outage itself: its length is what is modelled
            assert Connection.objects.get(pk=conn.pk).refresh_token_hash == old_hash
            # The worker's lease has lapsed meanwhile (reads still work).
            assert Connection.objects.filter(pk=conn.pk, lease_expires_at__lt=Now()).exists()
            accept_writes()
            wait_until_stored(conn, old_hash)
    finally:
        accept_writes()
    assert_the_answer_was_stored(conn, old_hash)


def test_a_worker_killed_during_the_outage_leaves_the_answer_for_the_next_worker(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manus"))
    old_hash = conn.refresh_token_hash
    try:
        with celery_worker() as worker:
            refresh_during_an_outage(conn)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        accept_writes()
        assert Connection.objects.get(pk=conn.pk).refresh_token_hash == old_hash
        # Ops can see what waits (the command exits 1 while anything does).
        out = io.StringIO()
        with pytest.raises(CommandError, match="1 answers still wait"):
            call_command("token_spool", stdout=out)
        assert f"connection {conn.pk}: answered at" in out.getvalue()
        with celery_worker():  # replays the spool as it starts
            wait_until_stored(conn, old_hash)
    finally:
        accept_writes()
    assert_the_answer_was_stored(conn, old_hash)
