"""The chain of rotating refresh tokens never breaks, and one refresh runs at a time."""

import pytest

from connections.lifecycle import lease
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.lifecycle.store import Stored, store_answer
from connections.lifecycle.tokens import connection_token
from connections.models import AuditEvent, Connection
from connections.oauth import TokenSet
from sandbox import registry
from tests.support.lifecycle import expire_access_token, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_thousand_consecutive_rotations_never_break_the_chain(make_sandbox_app, mint_connection):
    conn = mint_connection(make_sandbox_app("manu_online"))
    seen = {conn.refresh_token}
    for _ in range(1000):
        assert refresh_connection(conn.pk, reason="manual", force=True) == Outcome.REFRESHED
        conn.refresh_from_db()
        assert conn.refresh_token not in seen, "the provider must rotate every refresh token"
        seen.add(conn.refresh_token)
    assert conn.refresh_count == 1000
    assert conn.status == Connection.Status.ACTIVE
    assert (conn.lease_owner, conn.lease_expires_at, conn.inflight_refresh_hash) == ("", None, "")
    assert registry.refresh_token_is_active("manu_online", conn.refresh_token)
    assert registry.token_is_active("manu_online", conn.access_token)
    assert (
        registry.token_request_count("manu_online", conn.app.client_id, grant_type="refresh_token")
        == 1000
    )
    assert AuditEvent.objects.filter(connection=conn, kind="refreshed").count() == 1000


def test_tokens_are_stored_even_after_the_lease_passed_to_another_owner(
    make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    assert lease.acquire(conn, owner="slow-worker")
    # The slow worker's lease lapsed and another took it while the provider was answering.
    Connection.objects.filter(pk=conn.pk).update(lease_owner="next-worker")
    tokens = TokenSet("new-access", "Bearer", "new-refresh", 1800, "", "req-1")

    stored = store_answer(
        conn=conn, tokens=tokens, sent_hash=conn.refresh_token_hash, owner="slow-worker"
    )

    assert stored == Stored.STORED  # the same generation: nobody else stored a newer pair

    conn.refresh_from_db()
    assert (conn.access_token, conn.refresh_token) == ("new-access", "new-refresh")
    assert conn.lease_owner == "next-worker"  # only its owner releases a lease


def token_of(conn) -> str:
    return connection_token(conn.pk, tenant_id=conn.tenant_id, wait_seconds=20).access_token


def test_fifty_concurrent_requests_cause_exactly_one_refresh(make_sandbox_app, mint_connection):
    conn = mint_connection(make_sandbox_app("manus", pkce_mode="pkce_secret"))
    expire_access_token(conn)
    before = registry.token_request_count("manus", conn.app.client_id, grant_type="refresh_token")

    tokens = run_concurrently(50, lambda _: token_of(conn))

    assert (
        registry.token_request_count("manus", conn.app.client_id, grant_type="refresh_token")
        == before + 1
    )
    assert len(set(tokens)) == 1
    conn.refresh_from_db()
    assert tokens[0] == conn.access_token
    assert registry.token_is_active("manus", conn.access_token)


def test_redis_unreachable_refreshes_still_happen_one_at_a_time(
    make_sandbox_app, mint_connection, settings
):
    # Nothing listens on port 1: every Redis call fails at once, as with a stopped server.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    from connections import ratelimit

    ratelimit._redis_client = None
    try:
        conn = mint_connection(
            make_sandbox_app("manus", pkce_mode="secret", rate_limit=60, rate_window=60)
        )
        expire_access_token(conn)
        tokens = run_concurrently(20, lambda _: token_of(conn))
    finally:
        ratelimit._redis_client = None
    assert len(set(tokens)) == 1
    assert (
        registry.token_request_count("manus", conn.app.client_id, grant_type="refresh_token") == 1
    )
