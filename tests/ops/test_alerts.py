"""Alerts: who is told, once per condition, after commit; the weekly digest once a week."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from connections import alerts
from connections.models import Connection, Notice
from tests import factories


@pytest.fixture
def people(alice, bob, olive, carol):
    for user, email in ((alice, "alice@acme.test"), (bob, "bob@acme.test"),
                        (olive, "olive@acme.test"), (carol, "carol@globex.test")):
        user.email = email
        user.save()
    return alice, bob, olive


def test_admins_ops_and_the_owner_are_told_and_nobody_else(people, acme):
    alice, bob, olive = people
    assert alerts.recipients(acme) == ["alice@acme.test", "olive@acme.test"]
    assert alerts.recipients(acme, owner_id=bob.pk) == [
        "alice@acme.test", "bob@acme.test", "olive@acme.test",
    ]


def test_an_alert_is_sent_once_per_key(people, acme):
    for _ in range(3):
        alerts.send(tenant_id=acme.pk, subject="Needs re-authorisation", body="…", key="reauth:1:7")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "[Acme] Needs re-authorisation"
    assert Notice.objects.get(key="reauth:1:7").recipients == 2
    alerts.send(tenant_id=acme.pk, subject="Needs re-authorisation", body="…", key="reauth:1:9")
    assert len(mail.outbox) == 2  # a new condition (the connection was marked again)


def test_a_failed_send_can_be_retried(people, acme, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("SMTP down")

    monkeypatch.setattr(alerts, "send_mail", boom)
    with pytest.raises(OSError):
        alerts.send(tenant_id=acme.pk, subject="s", body="b", key="k")
    assert not Notice.objects.filter(key="k").exists()
    monkeypatch.undo()
    assert alerts.send(tenant_id=acme.pk, subject="s", body="b", key="k") == 2


def test_the_weekly_digest_lists_lapsing_tokens_once_per_week(people, acme, globex):
    app = factories.app(acme)
    soon = factories.connection(app, refresh_in=timedelta(days=12), account_name="Soon Oy")
    factories.connection(app, refresh_in=timedelta(days=90))  # outside 30 days
    factories.connection(app, refresh_in=timedelta(days=3), status=Connection.Status.REVOKED)
    monday = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert alerts.send_expiry_digests(now=timezone.now()) == 1
    assert alerts.send_expiry_digests(now=timezone.now()) == 0  # the same week: nothing more
    [digest] = mail.outbox
    assert "1 refresh token ending soon" in digest.subject
    assert f"#{soon.pk}" in digest.body and "Soon Oy" in digest.body
    assert "attention=lapsing" in digest.body
    assert digest.to == ["alice@acme.test", "olive@acme.test"]
    # a week later, another
    assert alerts.send_expiry_digests(now=monday + timedelta(days=7)) == 1
    assert len(mail.outbox) == 2


def test_no_digest_without_anything_lapsing(people, acme):
    factories.connection(factories.app(acme), refresh_in=timedelta(days=200))
    assert alerts.send_expiry_digests() == 0
    assert mail.outbox == []
