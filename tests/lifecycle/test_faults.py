"""Every failure class ends in the right status with an event: never silent, never a loop."""

import pytest
from django.core import mail
from django.utils import timezone

from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import AuditEvent, Connection, PrivateApp
from sandbox import faults, registry
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = Connection.Status


def refresh(conn) -> Outcome:
    outcome = refresh_connection(conn.pk, reason="manual", force=True)
    conn.refresh_from_db()
    return outcome


def test_a_5xx_is_retried_with_backoff_then_succeeds(make_sandbox_app, mint_connection):
    conn = mint_connection(make_sandbox_app("manu_online"))
    faults.inject(
        provider="manu_online", client_id=conn.app.client_id, kind="error_5xx", status=503
    )

    assert refresh(conn) == Outcome.RETRY_SCHEDULED
    assert conn.status == Status.FAILING and conn.failure_count == 1
    assert conn.next_refresh_at > timezone.now()
    assert "503" in conn.last_error
    assert AuditEvent.objects.filter(connection=conn, kind="refresh_failed").exists()

    assert refresh(conn) == Outcome.REFRESHED
    assert conn.status == Status.ACTIVE and conn.failure_count == 0
    assert registry.refresh_token_is_active("manu_online", conn.refresh_token)


def test_a_429_waits_for_retry_after(make_sandbox_app, mint_connection):
    conn = mint_connection(make_sandbox_app("manus"))
    faults.inject(provider="manus", client_id=conn.app.client_id, kind="rate_limit", retry_after=7)
    old_refresh = conn.refresh_token

    assert refresh(conn) == Outcome.RETRY_SCHEDULED
    wait = (conn.next_refresh_at - timezone.now()).total_seconds()
    assert 6 <= wait <= 9
    assert conn.refresh_token == old_refresh
    assert registry.refresh_token_is_active("manus", old_refresh)
    assert refresh(conn) == Outcome.REFRESHED


def test_latency_beyond_the_timeout_is_resent_promptly_with_the_same_token(
    make_sandbox_app, mint_connection, settings, answered_token_calls
):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    conn = mint_connection(make_sandbox_app("manu_online"))
    sent = conn.refresh_token
    faults.inject(
        provider="manu_online", client_id=conn.app.client_id, kind="latency", latency_ms=1500
    )

    outcome = refresh(conn)
    # The first call timed out; the prompt resend of the same token reached the provider
    # before the slow one was processed, so the chain goes on with the resend's answer
    # (REFRESHED in this one call, not a retry scheduled for later, shows it was prompt).
    assert outcome == Outcome.REFRESHED
    assert conn.refresh_token != sent
    assert registry.refresh_token_is_active("manu_online", conn.refresh_token)
    # The slow call, processed at last on the live server, leaves the resend's pair alone.
    wait_for(lambda: answered_token_calls.count("refresh_token") >= 2, timeout=10)
    assert registry.refresh_token_is_active("manu_online", conn.refresh_token)


def test_a_call_that_got_no_answer_is_resent_promptly_with_the_same_token(
    make_sandbox_app, mint_connection, monkeypatch
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    real_url = conn.app.token_url
    # Nothing listens on port 9: the first call fails in transport, unprocessed.
    PrivateApp.objects.filter(pk=conn.app.pk).update(token_url="http://127.0.0.1:9/token")
    from connections import oauth

    sent = []
    original = oauth.refresh

    def record_and_heal(app, creds, *, refresh_token):
        sent.append(refresh_token)
        if len(sent) > 1:
            app.token_url = real_url
        return original(app, creds, refresh_token=refresh_token)

    monkeypatch.setattr(oauth, "refresh", record_and_heal)
    assert refresh(conn) == Outcome.REFRESHED
    assert len(sent) == 2 and sent[0] == sent[1]


def test_a_lost_response_ends_in_reauth_with_the_reason_not_a_loop(
    make_sandbox_app, mint_connection, alice, tasks_inline
):
    alice.email = "alice@example.test"
    alice.save()
    conn = mint_connection(make_sandbox_app("manu_online"))
    faults.inject(provider="manu_online", client_id=conn.app.client_id, kind="lost_response")

    assert refresh(conn) == Outcome.RETRY_SCHEDULED  # a 502 came back: retry later
    assert refresh(conn) == Outcome.NEEDS_REAUTH  # the token was consumed by the lost call
    assert conn.status == Status.NEEDS_REAUTH
    assert conn.next_refresh_at is None
    event = AuditEvent.objects.filter(connection=conn, kind="reauth_needed").get()
    assert "invalid_grant" in event.message and "reply was lost" in event.message
    assert any("re-authorisation" in m.subject for m in mail.outbox)
    # Not retried in a loop: a scheduled run does nothing.
    assert refresh_connection(conn.pk, reason="scheduled") == Outcome.SKIPPED


def test_invalid_client_flags_the_app_and_tries_the_second_secret(
    make_sandbox_app, mint_connection
):
    app = make_sandbox_app("manu_online")
    conn = mint_connection(app)
    primary = app.client_secrets.get()
    primary.value = "wrong-secret"
    primary.save()

    assert refresh(conn) == Outcome.APP_CREDENTIALS_INVALID
    app.refresh_from_db()
    assert app.credentials_invalid_at is not None
    assert AuditEvent.objects.filter(app=app, kind="app_credentials_invalid").exists()

    # The real secret, added as a second one, is tried after the rejected primary.
    real = registry_secret(app)
    app.client_secrets.create(value=real, last_four=real[-4:], is_primary=False)
    assert refresh(conn) == Outcome.REFRESHED
    app.refresh_from_db()
    assert app.credentials_invalid_at is None
    assert (
        "secondary secret"
        in AuditEvent.objects.filter(connection=conn, kind="refreshed").first().message
    )


def registry_secret(app) -> str:
    new = f"secret-{app.pk}-second"
    from sandbox.models import Client

    client = Client.objects.get(client_id=app.client_id)
    registry.register_client(
        provider=app.provider,
        client_id=app.client_id,
        secrets=[new],
        redirect_uris=client.redirect_uris,
        scopes=client.scopes,
    )
    return new
