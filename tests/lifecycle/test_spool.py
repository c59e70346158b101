"""The spool and the refresh that spooled: found by the model test, kept as regressions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connections.lifecycle import (
    Outcome,
    TokenUnavailable,
    connection_refresh,
    connection_token,
    spool,
    spool_replay,
)
from connections.lifecycle.store import StoreFailed
from connections.models import AuditEvent, Connection
from tests import factories
from tests.support.lifecycle import (
    expire_access_token,
    refresh_requests,
    slow_refresh_in_flight,
)
from tests.support.outage import accept_writes, refuse_writes
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def spooled_refresh(conn, *, until_it_gives_up: bool = False):
    """A forced refresh whose answer the database refuses: it lands in the spool. The
    database accepts writes again at once, or only once the refresh gave up."""
    refresher, outcomes = slow_refresh_in_flight(conn)
    try:
        refuse_writes()
        wait_for(lambda: spool.entries(conn.pk), timeout=10, every=0.01)
        if until_it_gives_up:
            refresher.join(30)
    finally:
        accept_writes()
    if until_it_gives_up:
        [gave_up] = outcomes
        assert isinstance(gave_up, StoreFailed), gave_up  # the answer stays in the spool
    return refresher, outcomes


def test_a_beat_replaying_the_answer_leaves_no_lease_behind(
    make_sandbox_app, mint_connection, settings
):
    settings.STORE_RETRY_SECONDS = 30
    conn = mint_connection(make_sandbox_app("manu_online"))
    refresher, outcomes = spooled_refresh(conn)

    assert spool_replay() == 1  # the beat, while the worker waits between store retries
    refresher.join(30)

    assert outcomes == [Outcome.REFRESHED]
    row = Connection.objects.get(pk=conn.pk)
    assert (row.lease_owner, row.inflight_refresh_hash) == ("", "")
    assert row.refresh_token_hash != conn.refresh_token_hash


def test_an_orphaned_spool_entry_does_not_stop_the_next_refresh(
    make_sandbox_app, mint_connection, alice, settings
):
    settings.STORE_RETRY_SECONDS = 0.3  # the worker gives up; the answer stays spooled
    settings.ON_DEMAND_REFRESH_FLOOR = 0
    conn = mint_connection(make_sandbox_app("manu_online"))
    spooled_refresh(conn, until_it_gives_up=True)
    Connection.objects.filter(pk=conn.pk).update(lease_owner="", lease_expires_at=None)
    # A person reconnects: the spooled answer is now of an older generation.
    factories.minted_connection(conn.app, user=alice, reconnect=conn)
    expire_access_token(conn)

    served = connection_token(conn.pk, tenant_id=conn.tenant_id, wait_seconds=1)

    assert served.access_token_live()
    # The reconnect cleared the in-flight mark, so the refresh did not look in the spool;
    # the beat's replay settles the older answer (revoked as orphaned).
    assert spool_replay() == 0
    assert spool.entries(conn.pk) == []
    kinds = set(AuditEvent.objects.filter(connection=conn).values_list("kind", flat=True))
    assert {"tokens_orphaned", "tokens_spooled", "refreshed"} <= kinds
    with pytest.raises(TokenUnavailable):
        Connection.objects.filter(pk=conn.pk).update(status="revoked")
        connection_token(conn.pk, tenant_id=conn.tenant_id, wait_seconds=1)


def test_a_holder_whose_store_failed_keeps_its_mark_and_the_next_refresh_replays_first(
    make_sandbox_app, mint_connection, settings
):
    settings.STORE_RETRY_SECONDS = 0.3  # the worker gives up; the answer stays spooled
    conn = mint_connection(make_sandbox_app("manu_online"))
    spooled_refresh(conn, until_it_gives_up=True)  # writes accepted again only after that
    row = Connection.objects.get(pk=conn.pk)
    assert row.lease_owner and row.inflight_refresh_hash == conn.refresh_token_hash
    Connection.objects.filter(pk=conn.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    sent = refresh_requests(conn.app)

    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.SUPERSEDED
    assert refresh_requests(conn.app) == sent  # the spent token was not sent again
    assert spool.entries(conn.pk) == []
    row = Connection.objects.get(pk=conn.pk)
    assert row.refresh_token_hash != conn.refresh_token_hash and row.lease_owner == ""
