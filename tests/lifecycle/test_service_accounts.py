"""Service-account tokens (no refresh token) are re-fetched before expiry, on schedule."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from connections.lifecycle.obtain import obtain_service_token
from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import Connection, PrivateApp
from sandbox import registry
from tests.support.lifecycle import expire_access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("provider", ["manitou_group", "manhattan_active"])
def test_a_service_token_is_refetched_when_due(make_sandbox_app, alice, provider):
    app = make_sandbox_app(provider)
    if provider == "manhattan_active":
        registry.create_user(provider=provider, username="svc", password="svc-pass")
        PrivateApp.objects.filter(pk=app.pk).update(
            service_username="svc", service_password="svc-pass"
        )
        app.refresh_from_db()
    conn = obtain_service_token(app=app, actor=alice)
    assert conn.kind == Connection.Kind.SERVICE and conn.refresh_token is None
    # Scheduled before the access token expires, even though there is no refresh token.
    assert timezone.now() < conn.next_refresh_at < conn.access_expires_at
    first = conn.access_token

    assert refresh_connection(conn.pk, reason="scheduled") == Outcome.FRESH
    expire_access_token(conn)
    assert refresh_connection(conn.pk, reason="scheduled") == Outcome.REFRESHED
    conn.refresh_from_db()
    assert conn.access_token != first
    assert registry.token_is_active(provider, conn.access_token)


def test_refresh_connection_command_reports_and_fails_loudly(
    make_sandbox_app, mint_connection, capsys
):
    conn = mint_connection(make_sandbox_app("manu_online"))
    call_command("refresh_connection", conn.pk)
    assert "refreshed" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No connection with id 999999"):
        call_command("refresh_connection", 999999)
    Connection.objects.filter(pk=conn.pk).update(status=Connection.Status.NEEDS_REAUTH)
    with pytest.raises(CommandError, match="skipped"):
        call_command("refresh_connection", conn.pk)


def test_refresh_due_command_refreshes_what_is_due_with_progress(
    make_sandbox_app, mint_connection, capsys
):
    app = make_sandbox_app("manu_online")
    due, fresh = mint_connection(app), mint_connection(app)
    expire_access_token(due)
    call_command("refresh_due")
    out = capsys.readouterr().out
    assert "1 connections due" in out and "[1/1]" in out and "refreshed: 1" in out
    fresh.refresh_from_db()
    assert fresh.refresh_count == 0
