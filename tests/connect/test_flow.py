"""The whole authorization-code flow against the sandbox, and the service-account grants."""

import pytest
from django.db import connection as db
from django.urls import reverse

from connections.models import AuditEvent, AuthorizationAttempt, Connection
from sandbox import registry
from tests.support.connect import params_of, start

pytestmark = pytest.mark.django_db(transaction=True)


def raw_row(conn: Connection) -> str:
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM connections_connection WHERE id = %s",
            [conn.pk],
        )
        return " ".join(v or "" for v in cursor.fetchone())


def assert_stored_encrypted(conn: Connection) -> None:
    row = raw_row(conn)
    assert conn.access_token and conn.access_token not in row
    if conn.refresh_token:
        assert conn.refresh_token not in row


@pytest.mark.parametrize(
    ("provider_key", "pkce_mode"),
    [
        ("manu_online", "secret"),
        ("manus", "pkce_secret"),
        ("manus", "secret"),
        ("manus", "pkce"),
    ],
)
def test_it_connects_with_the_authorization_code_flow(
    login, bob, consent_app, consent_callback, provider_key, pkce_mode
):
    app = consent_app(provider_key, pkce_mode=pkce_mode)
    client = login(bob)

    callback = consent_callback(client, app)
    response = client.get(callback)

    conn = Connection.objects.get(app=app)
    assert response.status_code == 302
    assert response["Location"] == reverse("connection_detail", args=["acme", conn.pk])
    assert conn.user == bob and conn.status == Connection.Status.ACTIVE
    assert conn.kind == Connection.Kind.USER
    assert registry.token_is_active(provider_key, conn.access_token)
    assert conn.refresh_token and conn.access_expires_at and conn.refresh_expires_at
    assert conn.account_name
    assert_stored_encrypted(conn)
    assert AuditEvent.objects.filter(connection=conn, kind=AuditEvent.Kind.AUTHORIZED).exists()
    page = client.get(response["Location"])
    assert conn.account_name in page.content.decode()


def test_the_authorize_request_carries_the_providers_separator_and_pkce(login, bob, consent_app):
    manu = params_of(start(login(bob), consent_app("manu_online", scopes=["API_ALL", "EXTRA"])))
    manus = params_of(start(login(bob), consent_app("manus", pkce_mode="pkce_secret")))

    assert manu["scope"] == "API_ALL,EXTRA" and manu["code_challenge_method"] == "S256"
    assert manus["code_challenge_method"] == "S256" and len(manus["code_challenge"]) == 43
    attempt = AuthorizationAttempt.objects.get(app__provider="manus")
    assert attempt.state_hash != manus["state"] and attempt.pkce_verifier
    assert attempt.user == bob and attempt.used_at is None


def test_manu_online_user_picks_one_of_the_apps_accounts(login, bob, consent_app, consent_callback):
    app = consent_app("manu_online", account_ids=["1001", "1002"])
    client = login(bob)

    client.get(consent_callback(client, app, account="1002"))

    conn = Connection.objects.get(app=app)
    assert (conn.account_id, conn.account_name) == ("1002", "Acme Trading AB")


def test_connect_refuses_an_app_without_the_portal_callback(login, bob, consent_app):
    app = consent_app("manu_online", redirect_uris=["https://elsewhere.example/cb"])
    client = login(bob)

    response = client.post(reverse("app_connect", args=["acme", app.pk]), follow=True)

    assert "does not list this portal" in response.content.decode()
    assert not AuthorizationAttempt.objects.exists()


def test_connect_refuses_a_disabled_app(login, bob, consent_app):
    app = consent_app("manus", status="disabled")
    response = login(bob).post(reverse("app_connect", args=["acme", app.pk]), follow=True)

    assert "cannot connect" in response.content.decode()
    assert not AuthorizationAttempt.objects.exists()


def test_ops_cannot_connect(login, olive, consent_app):
    app = consent_app("manus")
    response = login(olive).post(reverse("app_connect", args=["acme", app.pk]))
    assert response.status_code == 403


def test_connect_to_another_tenants_app_is_a_404(login, carol, consent_app):
    app = consent_app("manus")
    response = login(carol).post(reverse("app_connect", args=["acme", app.pk]))
    assert response.status_code == 404
    response = login(carol).post(reverse("app_connect", args=["globex", app.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize("provider_key", ["manitou_group", "manhattan_active"])
def test_an_admin_creates_a_service_connection(login, alice, consent_app, provider_key):
    app = consent_app(provider_key)

    response = login(alice).post(reverse("app_service_connect", args=["acme", app.pk]))

    conn = Connection.objects.get(app=app)
    assert response["Location"] == reverse("connection_detail", args=["acme", conn.pk])
    assert conn.kind == Connection.Kind.SERVICE and conn.status == Connection.Status.ACTIVE
    assert registry.token_is_active(provider_key, conn.access_token)
    assert conn.next_refresh_at is not None  # re-fetched before expiry
    assert_stored_encrypted(conn)


def test_members_cannot_create_service_connections(login, bob, consent_app):
    app = consent_app("manitou_group")
    response = login(bob).post(reverse("app_service_connect", args=["acme", app.pk]))
    assert response.status_code == 403
    assert not Connection.objects.exists()


def test_a_refused_service_grant_is_explained_and_stores_nothing(login, alice, consent_app):
    app = consent_app("manhattan_active", service_password="wrong")

    response = login(alice).post(reverse("app_service_connect", args=["acme", app.pk]), follow=True)

    assert response.status_code == 200
    assert "did not give a token" in response.content.decode()
    assert not Connection.objects.exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.AUTHORIZE_FAILED).exists()


@pytest.mark.parametrize(
    ("provider_key", "pkce_mode"), [("manu_online", "secret"), ("manus", "secret")]
)
def test_s256_pkce_is_sent_beside_a_client_secret(
    login, bob, consent_app, consent_callback, provider_key, pkce_mode
):
    # RFC 9700 §2.1.1: PKCE on every authorization-code flow unless the provider refuses it.
    app = consent_app(provider_key, pkce_mode=pkce_mode)
    client = login(bob)
    params = params_of(start(client, app))
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    attempt = AuthorizationAttempt.objects.get(app=app)
    assert attempt.pkce_verifier

    client.get(consent_callback(client, app))
    assert Connection.objects.get(app=app).status == Connection.Status.ACTIVE
