"""Secrets, passwords and keys are unreadable in the database and survive key rotation."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse

from connections.models import ClientSecret, PrivateApp

pytestmark = pytest.mark.django_db


def raw_row(table: str, pk: int) -> str:
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return repr(cur.fetchone())


def register(client, provider: str, data: dict):
    url = reverse("app_create", args=["acme"]) + f"?provider={provider}"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return PrivateApp.objects.get(name=data["name"])


def test_manhattan_credentials_and_secret_are_encrypted_at_rest(alice, login):
    app = register(
        login(alice),
        "manhattan_active",
        {
            "name": "WMS",
            "client_id": "omnicomponent",
            "client_secret": "client-secret-PLAIN",
            "service_username": "svc-username-PLAIN",
            "service_password": "svc-password-PLAIN",
            "token_url": "https://wms.example/oauth/token",
            "api_base_url": "https://wms.example",
        },
    )
    row = raw_row("connections_privateapp", app.pk)
    assert "svc-username-PLAIN" not in row and "svc-password-PLAIN" not in row
    secret = app.client_secrets.get()
    assert "client-secret-PLAIN" not in raw_row("connections_clientsecret", secret.pk)
    assert secret.value == "client-secret-PLAIN" and secret.last_four == "LAIN"
    detail = login(alice).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert "svc-password-PLAIN" not in detail and "svc-username-PLAIN" not in detail


def test_manitou_subscription_keys_are_encrypted_and_never_shown(alice, login):
    client = login(alice)
    app = register(
        client,
        "manitou_group",
        {
            "name": "Fleet",
            "client_id": "cid",
            "client_secret": "secret-one-PLAIN",
            "scopes": ["Products"],
            "subscription_key_primary": "primary-key-PLAIN",
            "subscription_key_secondary": "secondary-key-PLAIN",
        },
    )
    row = raw_row("connections_privateapp", app.pk)
    assert "primary-key-PLAIN" not in row and "secondary-key-PLAIN" not in row
    edit = client.get(reverse("app_edit", args=["acme", app.pk])).content.decode()
    assert "key-PLAIN" not in edit and "Set. Leave blank to keep it." in edit
    assert app.status == "enabled" and app.scopes == ["Products"]


def test_secrets_decrypt_after_a_key_rotation(manu_app, settings):
    settings.FIELD_ENCRYPTION_KEYS = [
        Fernet.generate_key().decode(),
        *settings.FIELD_ENCRYPTION_KEYS,
    ]
    assert ClientSecret.objects.get(app=manu_app).value == "first-secret-AAAA"


def test_the_session_never_holds_the_plaintext_secret(alice, login):
    from django.contrib.sessions.models import Session

    client = login(alice)
    url = reverse("app_create", args=["acme"]) + "?provider=manus"
    client.post(
        url,
        {
            "name": "Tasks",
            "client_id": "client_x",
            "pkce_mode": "secret",
            "client_auth": "json",
            "redirect_uris": "https://a.example/cb",
            "refresh_policy": "warm",
            "client_secret": "session-secret-PLAIN",
        },
    )
    for session in Session.objects.all():
        assert "session-secret-PLAIN" not in session.session_data
        assert "session-secret-PLAIN" not in str(session.get_decoded())


def test_django_admin_never_shows_a_secret(manu_app, admin_client):
    manu_app.service_password = "admin-hidden-PLAIN"
    manu_app.save()
    secret = manu_app.client_secrets.get()
    pages = [
        reverse("admin:connections_privateapp_changelist"),
        reverse("admin:connections_privateapp_change", args=[manu_app.pk]),
        reverse("admin:connections_clientsecret_changelist"),
        reverse("admin:connections_clientsecret_change", args=[secret.pk]),
        reverse("admin:connections_auditevent_changelist"),
        reverse("admin:connections_connection_changelist"),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "first-secret-AAAA" not in html and "admin-hidden-PLAIN" not in html
