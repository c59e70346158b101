"""Connection pages: who sees what, Test (with one refresh on a 401), Refresh, Reconnect
(keeps the id) and Disconnect (revokes at the provider)."""

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from connections.models import AuditEvent, Connection
from portal.models import Membership, Tenant
from sandbox import registry
from sandbox.models import Client as SandboxClient
from sandbox.models import Token
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connected(login, bob, consent_app, consent_callback):
    """bob's Manus connection, made through the real flow."""

    def make(provider_key="manus", **app_fields) -> Connection:
        app = consent_app(provider_key, **app_fields)
        client = login(bob)
        client.get(consent_callback(client, app))
        return Connection.objects.get(app=app)

    return make


def url(name: str, conn: Connection, tenant: str = "acme") -> str:
    return reverse(name, args=[tenant, conn.pk])


def test_the_list_and_detail_show_status_account_and_expiry(login, bob, connected):
    conn = connected("manu_online")
    client = login(bob)

    listing = client.get(reverse("connection_list", args=["acme"])).content.decode()
    detail = client.get(url("connection_detail", conn)).content.decode()

    assert "Acme Oy" in listing and "status-active" in listing
    # the exact time is on the page beside the words, not only in a tooltip
    assert f'datetime="{conn.access_expires_at.isoformat()}"' in listing
    assert f'data-exact="{conn.access_expires_at.isoformat()}"' in listing
    assert "API_ALL" in detail and "Authorised" in detail
    assert conn.access_token not in detail and conn.refresh_token not in detail


def test_members_see_only_their_own_admins_and_ops_see_all(login, bob, alice, olive, connected):
    conn = connected()
    other = make_member_of_acme("erin")

    assert login(other).get(url("connection_detail", conn)).status_code == 404
    listing = login(other).get(reverse("connection_list", args=["acme"])).content.decode()
    assert 'data-testid="connection-row"' not in listing
    for reader in (alice, olive, bob):
        assert login(reader).get(url("connection_detail", conn)).status_code == 200


def test_ops_cannot_change_a_connection(login, olive, connected):
    conn = connected()
    for name in (
        "connection_test",
        "connection_refresh",
        "connection_reconnect",
        "connection_disconnect",
    ):
        assert login(olive).post(url(name, conn)).status_code == 403
    assert Connection.objects.get().status == Connection.Status.ACTIVE


def test_another_tenants_connection_is_a_404(login, carol, connected):
    conn = connected()
    client = login(carol)
    assert client.get(url("connection_detail", conn, "globex")).status_code == 404
    assert client.get(url("connection_detail", conn)).status_code == 404
    assert client.post(url("connection_disconnect", conn, "globex")).status_code == 404


def test_test_calls_the_providers_test_endpoint(login, bob, connected):
    conn = connected("manu_online")

    page = login(bob).post(url("connection_test", conn), follow=True).content.decode()

    assert "HTTP 200" in page and "&quot;account_id&quot;: &quot;1001&quot;" in page
    assert AuditEvent.objects.filter(connection=conn, kind=AuditEvent.Kind.TESTED).exists()


def test_test_refreshes_once_when_the_provider_drops_the_token(login, bob, connected):
    conn = connected()
    # The provider forgets the access token before its expiry (e.g. revoked on its side).
    Token.objects.filter(kind=Token.Kind.ACCESS).update(revoked_at=timezone.now())

    page = login(bob).post(url("connection_test", conn), follow=True).content.decode()

    conn.refresh_from_db()
    assert "HTTP 200" in page
    assert conn.refresh_count == 1 and registry.token_is_active("manus", conn.access_token)


def test_refresh_gets_a_new_token(login, bob, connected):
    conn = connected()
    old = conn.access_token

    page = login(bob).post(url("connection_refresh", conn), follow=True).content.decode()

    conn.refresh_from_db()
    assert "Refreshed" in page and conn.access_token != old
    assert not registry.token_is_active("manus", old)


def test_disconnect_revokes_at_manus_and_erases_the_tokens(login, bob, connected):
    conn = connected()
    access, refresh = conn.access_token, conn.refresh_token

    page = login(bob).post(url("connection_disconnect", conn), follow=True).content.decode()

    conn.refresh_from_db()
    assert "Revoked at the provider" in page
    assert conn.status == Connection.Status.REVOKED and conn.access_token is None
    assert conn.refresh_token is None
    assert not registry.token_is_active("manus", access)
    assert not registry.refresh_token_is_active("manus", refresh)


def test_an_unconfirmed_disconnect_warns_and_shows_the_pending_revocation(login, bob, connected):
    conn = connected()
    SandboxClient.objects.filter(client_id=conn.app.client_id).update(rate_limit=0)

    page = login(bob).post(url("connection_disconnect", conn), follow=True).content.decode()

    assert "msg-warning" in page and "retried in the background" in page
    assert 'data-testid="revoke-pending"' in page
    conn.refresh_from_db()
    assert conn.status == Connection.Status.REVOKED and conn.revoke_retry_at is not None


def test_reconnect_keeps_the_connection_id(login, bob, connected, provider_person):
    conn = connected()
    client = login(bob)
    client.post(url("connection_disconnect", conn))

    response = client.post(url("connection_reconnect", conn))
    back = client.get(provider_person.consent(response["Location"]))

    assert back["Location"] == url("connection_detail", conn)
    assert Connection.objects.count() == 1
    conn.refresh_from_db()
    assert conn.status == Connection.Status.ACTIVE
    assert registry.token_is_active("manus", conn.access_token)


def test_reconnect_to_another_account_becomes_a_new_connection(
    login, bob, connected, provider_person
):
    """The id tenants' services hold never starts serving another account."""
    conn = connected("manu_online", account_ids=["1001", "1002"])
    client = login(bob)
    Connection.objects.filter(pk=conn.pk).update(status=Connection.Status.NEEDS_REAUTH)
    assert conn.account_id == "1001"

    response = client.post(url("connection_reconnect", conn))
    back = client.get(provider_person.consent(response["Location"], account="1002"), follow=True)

    page = back.content.decode()
    other = Connection.objects.exclude(pk=conn.pk).get()
    assert back.redirect_chain[-1][0] == url("connection_detail", other)
    assert "msg-warning" in page and f"connection #{conn.pk} is for Acme Oy" in page
    assert other.account_id == "1002" and other.status == Connection.Status.ACTIVE
    before = conn.access_token
    conn.refresh_from_db()
    assert conn.status == Connection.Status.NEEDS_REAUTH and conn.access_token == before
    assert AuditEvent.objects.filter(connection=other, message__contains="another account")

    # Reconnecting with the connection's own account brings the same id back.
    response = client.post(url("connection_reconnect", conn))
    client.get(provider_person.consent(response["Location"], account="1001"))
    conn.refresh_from_db()
    assert conn.status == Connection.Status.ACTIVE and Connection.objects.count() == 2


def test_reconnect_of_a_service_connection_fetches_a_new_token(login, alice, consent_app):
    app = consent_app("manitou_group")
    client = login(alice)
    client.post(reverse("app_service_connect", args=["acme", app.pk]))
    conn = Connection.objects.get()
    old = conn.access_token

    client.post(url("connection_reconnect", conn))

    conn.refresh_from_db()
    assert Connection.objects.count() == 1 and conn.access_token != old
    page = client.post(url("connection_test", conn), follow=True).content.decode()
    assert "MT-625" in page


def test_the_connect_button_follows_the_app_and_role(login, bob, alice, olive, consent_app):
    manus, manitou = consent_app("manus"), consent_app("manitou_group")
    disabled = consent_app("manu_online", status="disabled")

    def button(app, user):
        membership = user.memberships.get()
        return render_to_string(
            "connections/apps/_connect_button.html",
            {"app": app, "current_membership": membership, "current_tenant": app.tenant},
        )

    assert 'data-testid="connect"' in button(manus, bob)
    assert 'data-testid="connect"' not in button(manus, olive)
    assert 'data-testid="connect-hint"' in button(disabled, bob)
    assert 'data-testid="service-connect"' in button(manitou, alice)
    assert 'data-testid="service-connect"' not in button(manitou, bob)


def make_member_of_acme(username):
    return factories.member(Tenant.objects.get(slug="acme"), username, Membership.Role.MEMBER)
