"""Refreshes stay under the provider's token-endpoint limit per client id, and no slower."""

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from connections import ratelimit
from connections.lifecycle import provider_calls
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.lifecycle.revoke import disconnect
from connections.models import AuditEvent, PrivateApp, RateLimitWindow
from connections.oauth import ProviderError
from sandbox import faults, registry
from sandbox.models import Client
from tests.support.lifecycle import expire_access_token, run_concurrently
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
# Thirty refreshes at once under ten per window: three windows, two of them waited for. The
# window is the app's setting and the sandbox client's (Manus's own limit is 60 per minute); a
# short one is waited for the same way as a long one, only sooner.
LIMIT, WINDOW, N = 10, 3, 30


def forget_earlier_requests(app) -> None:
    key = ratelimit.key_for(app)
    RateLimitWindow.objects.filter(key=key).delete()
    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL).delete(key)


def test_thirty_manus_refreshes_under_ten_per_window_get_no_429(make_sandbox_app, mint_connection):
    app = make_sandbox_app("manus")
    conns = [mint_connection(app) for _ in range(N)]
    # Connected without a limit; now the provider enforces one and the app knows it, and the
    # connects' code exchanges are long past (their stamps are dropped from the log).
    forget_earlier_requests(app)
    client = Client.objects.get(client_id=app.client_id)
    Client.objects.filter(pk=client.pk).update(
        rate_limit=LIMIT, rate_window=WINDOW, window_started_at=None, window_count=0
    )
    PrivateApp.objects.filter(pk=app.pk).update(token_rate_limit=LIMIT, token_rate_window=WINDOW)
    for conn in conns:
        expire_access_token(conn)

    outcomes = run_concurrently(
        N, lambda i: refresh_connection(conns[i].pk, reason="manual", force=True)
    )

    # Held back, never early: without the portal's limiter the sandbox would have answered
    # 429 to the eleventh refresh in a window, and that refresh would have failed.
    assert outcomes == [Outcome.REFRESHED] * N
    assert not AuditEvent.objects.filter(app=app, kind="refresh_failed").exists()


def test_code_exchanges_take_slots_and_one_held_back_is_never_sent(
    make_sandbox_app, mint_connection, monkeypatch
):
    app = make_sandbox_app("manus")
    Client.objects.filter(client_id=app.client_id).update(
        rate_limit=2, rate_window=60, window_started_at=None, window_count=0
    )
    PrivateApp.objects.filter(pk=app.pk).update(token_rate_limit=2, token_rate_window=60)
    app.refresh_from_db()
    first = mint_connection(app)
    mint_connection(app)
    monkeypatch.setattr(provider_calls, "INTERACTIVE_RATE_LIMIT_WAIT", 0.2)

    with pytest.raises(ProviderError) as caught:
        mint_connection(app)
    assert caught.value.held_back
    assert "not sent" in caught.value.describe()
    assert Client.objects.get(client_id=app.client_id).window_count == 2

    # A refresh due inside the same window is held back too, its refresh token unspent.
    expire_access_token(first)
    assert refresh_connection(first.pk, reason="manual", force=True) == Outcome.RETRY_SCHEDULED
    first_after = type(first).objects.get(pk=first.pk)
    assert "held back by the portal" in first_after.last_error
    # Nothing was sent: due again for the next sweep, not after another full wait.
    assert first_after.next_refresh_at <= timezone.now() + timedelta(seconds=2)
    assert first_after.refresh_token == first.refresh_token
    assert registry.refresh_token_is_active("manus", first.refresh_token)
    assert Client.objects.get(client_id=app.client_id).window_count == 2


def test_a_resend_after_no_answer_takes_a_slot_of_its_own(
    make_sandbox_app, mint_connection, settings
):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    app = make_sandbox_app("manu_online")
    conn = mint_connection(app)
    PrivateApp.objects.filter(pk=app.pk).update(token_rate_limit=1, token_rate_window=60)
    faults.inject(provider="manu_online", client_id=app.client_id, kind="latency", latency_ms=1500)

    outcome = refresh_connection(conn.pk, reason="manual", force=True)
    # The first call timed out and used the only slot; the resend waits for the next window,
    # and the connection says what happened: no answer, not a rate limit.
    assert outcome == Outcome.RETRY_SCHEDULED
    conn.refresh_from_db()
    assert "held back" not in conn.last_error
    assert conn.last_error.startswith("transport")
    # Before teardown, let the slow call finish on the live server: it spends the refresh
    # token the portal still holds.
    wait_for(lambda: not registry.refresh_token_is_active("manu_online", conn.refresh_token))


def test_revocations_take_slots_of_the_same_window(make_sandbox_app, mint_connection, monkeypatch):
    app = make_sandbox_app("manus")
    first, second = mint_connection(app), mint_connection(app)
    forget_earlier_requests(app)
    Client.objects.filter(client_id=app.client_id).update(
        rate_limit=2, rate_window=60, window_started_at=None, window_count=0
    )
    PrivateApp.objects.filter(pk=app.pk).update(token_rate_limit=2, token_rate_window=60)
    monkeypatch.setattr(provider_calls, "INTERACTIVE_RATE_LIMIT_WAIT", 0.2)
    first, second = (type(c).objects.select_related("app").get(pk=c.pk) for c in (first, second))

    # Two revocations (refresh and access token) fill the window of 2...
    assert disconnect(conn=first, actor=None).message.startswith("Revoked at the provider")
    # ...so the next disconnect is held back rather than answered 429, and says so.
    outcome = disconnect(conn=second, actor=None).message
    assert "did not confirm revocation" in outcome and "not sent" in outcome
    assert Client.objects.get(client_id=app.client_id).window_count == 2
    assert registry.refresh_token_is_active("manus", second.refresh_token)
