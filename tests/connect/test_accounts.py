"""Which account a grant is for: one connection per account and app, only the app's accounts,
and a secret the provider refused shown where admins look."""

import pytest
from django.urls import reverse

from connections import lifecycle
from connections.models import AuditEvent, ClientSecret, Connection, PrivateApp
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_grant_for_an_account_outside_the_apps_account_ids_is_refused(
    login, bob, consent_app, consent_callback
):
    # The provider offers both accounts; the portal's app is bound to 1001 only.
    app = consent_app("manu_online", account_ids=["1001", "1002"])
    PrivateApp.objects.filter(pk=app.pk).update(account_ids=["1001"])
    client = login(bob)

    response = client.get(consent_callback(client, app, account="1002"), follow=True)

    page = response.content.decode()
    assert "granted account 1002, which is not one of this app&#x27;s account ids" in page
    assert "Nothing was stored" in page
    assert not Connection.objects.exists()
    failed = AuditEvent.objects.get(kind=AuditEvent.Kind.AUTHORIZE_FAILED)
    assert failed.app == app and failed.actor == bob


def test_connecting_an_account_again_reuses_its_connection(
    login, bob, alice, consent_app, consent_callback
):
    app = consent_app("manu_online", account_ids=["1001", "1002"])
    client = login(bob)
    client.get(consent_callback(client, app, account="1001"))
    first = Connection.objects.get(app=app)
    first_token = first.access_token

    response = client.get(consent_callback(client, app, account="1001"), follow=True)

    assert Connection.objects.filter(app=app).count() == 1
    again = Connection.objects.get(app=app)
    assert again.pk == first.pk and again.access_token != first_token
    assert f"already had connection #{first.pk}" in response.content.decode()
    # Another account is another connection.
    client.get(consent_callback(client, app, account="1002"))
    assert Connection.objects.filter(app=app).count() == 2


def test_a_service_account_connected_twice_stays_one_connection(login, alice, consent_app):
    app = consent_app("manitou_group")
    client = login(alice)
    url = reverse("app_service_connect", args=["acme", app.pk])
    client.post(url)
    client.post(url)
    assert Connection.objects.filter(app=app).count() == 1


def test_admins_delete_revoked_connections_and_keep_their_history(acme, alice, bob, login):
    app = factories.app(acme, "manus")
    revoked = factories.connection(app, user=bob, status=Connection.Status.REVOKED)
    live = factories.connection(app, user=bob)
    pending = factories.connection(
        app, user=bob, status=Connection.Status.REVOKED, revoke_retry_at=live.created_at
    )
    factories.event(revoked, AuditEvent.Kind.REVOKED, at=revoked.created_at)
    url = lambda c: reverse("connection_delete", args=["acme", c.pk])  # noqa: E731

    assert login(bob).post(url(revoked)).status_code == 403  # members cannot
    admin = login(alice)
    detail = admin.get(reverse("connection_detail", args=["acme", revoked.pk])).content.decode()
    assert 'data-testid="delete"' in detail and 'data-confirm="Delete connection' in detail
    assert admin.post(url(revoked)).status_code == 302
    for kept in (live, pending):  # not revoked, or its revocation still pending
        response = admin.post(url(kept), follow=True)
        assert "Only a disconnected connection" in response.content.decode()
    assert set(Connection.objects.values_list("pk", flat=True)) == {live.pk, pending.pk}
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.REVOKED, connection=None).exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONNECTION_DELETED, app=app).exists()


def test_deleting_another_tenants_connection_is_a_404(acme, carol, login):
    conn = factories.connection(factories.app(acme, "manus"), status=Connection.Status.REVOKED)
    assert (
        login(carol).post(reverse("connection_delete", args=["acme", conn.pk])).status_code == 404
    )
    assert (
        login(carol).post(reverse("connection_delete", args=["globex", conn.pk])).status_code == 404
    )
    assert Connection.objects.filter(pk=conn.pk).exists()


def test_a_refused_primary_secret_is_shown_on_the_app_and_in_the_message(
    login, alice, bob, consent_app, consent_callback
):
    app = consent_app("manu_online")
    good = app.client_secrets.get()
    # A new primary the provider does not know: the portal falls back to the old one.
    ClientSecret.objects.filter(pk=good.pk).update(is_primary=False)
    wrong = ClientSecret.objects.create(
        app=app, value="not-known-at-provider-9999", last_four="9999", is_primary=True
    )
    client = login(bob)
    client.get(consent_callback(client, app))
    conn = Connection.objects.get(app=app)

    response = login(alice).post(reverse("connection_refresh", args=["acme", conn.pk]), follow=True)

    assert "refused the primary secret ••••9999" in response.content.decode()
    wrong.refresh_from_db()
    assert wrong.rejected_at is not None
    page = login(alice).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert 'data-testid="primary-rejected"' in page and 'data-testid="secret-refused"' in page
    # Recorded once, however often the fallback happens.
    lifecycle.connection_refresh(conn.pk, reason="manual", force=True)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SECRET_REJECTED).count() == 1
    # Once the primary works again, the warning goes.
    ClientSecret.objects.filter(pk=wrong.pk).update(is_primary=False)
    ClientSecret.objects.filter(pk=good.pk).update(is_primary=True)
    ClientSecret.objects.filter(pk=wrong.pk).update(revoked_at=wrong.created_at)
    page = login(alice).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert 'data-testid="primary-rejected"' not in page


def test_two_members_connecting_one_company_account_each_keep_their_own(
    login, bob, alice, consent_app, consent_callback
):
    # Manu Online's account is the company's: every member connects the same one.
    app = consent_app("manu_online", account_ids=["1001", "1002"])
    for person in (bob, alice):
        client = login(person)
        client.get(consent_callback(client, app, account="1001"))
    owners = sorted(Connection.objects.filter(app=app).values_list("user__username", flat=True))
    assert owners == ["alice", "bob"]


def test_a_grant_whose_account_cannot_be_told_is_refused_where_accounts_are_bound(
    login, bob, consent_app, consent_callback
):
    app = consent_app("manu_online", account_ids=["1001", "1002"])
    PrivateApp.objects.filter(pk=app.pk).update(test_path="/no-such-endpoint")
    client = login(bob)

    response = client.get(consent_callback(client, app, account="1001"), follow=True)

    assert "did not say which account was granted" in response.content.decode()
    assert not Connection.objects.exists()
