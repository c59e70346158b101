"""Re-authorisation and rejected credentials reach the owner, admins and ops once, after the
write and the lease (the queueing itself is tested in test_engine_faults)."""

from django.core import mail

from connections.lifecycle import Outcome, connection_refresh, connections_mark_reauth
from tests import factories
from tests.support.lifecycle import provider_refresh


def with_email(*users):
    for user in users:
        user.email = f"{user.username}@acme.test"
        user.save()


def test_a_refused_refresh_tells_owner_admins_and_ops_once(
    make_sandbox_app, mint_connection, alice, bob, olive, tasks_inline
):
    with_email(alice, bob, olive)
    app = make_sandbox_app("manu_online")
    conn = factories.minted_connection(app, user=bob)
    provider_refresh(conn)  # the stored refresh token is spent elsewhere
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.NEEDS_REAUTH
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.SKIPPED
    [notice] = [m for m in mail.outbox if "re-authorisation" in m.subject]
    assert sorted(notice.to) == ["alice@acme.test", "bob@acme.test", "olive@acme.test"]


def test_widened_scopes_send_one_alert_for_the_whole_app(
    make_sandbox_app, mint_connection, alice, tasks_inline
):
    with_email(alice)
    app = make_sandbox_app("manus")
    for _ in range(3):
        mint_connection(app)
    marked = connections_mark_reauth(app=app, why="scopes widened", actor=alice, message="x.")
    assert marked == 3
    [notice] = mail.outbox
    assert "3 connections" in notice.subject and "attention=needs_reauth" in notice.body
