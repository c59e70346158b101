"""The demo: one enabled app per provider, idempotent, its secret matching the sandbox's."""

import pytest

from connections.models import PrivateApp
from sandbox import registry
from sandbox.demo import create_demo_apps
from sandbox.models import Client

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_apps_are_created_once(acme, alice, settings):
    apps = create_demo_apps(tenant=acme, user=alice)
    again = create_demo_apps(tenant=acme, user=alice)
    assert [a.pk for a in apps] == [a.pk for a in again]
    assert {a.provider for a in apps} == {
        "manu_online",
        "manus",
        "manhattan_active",
        "manitou_group",
    }
    assert PrivateApp.objects.filter(tenant=acme).count() == 4
    for app in again:
        assert app.status == PrivateApp.Status.ENABLED
        secret = app.client_secrets.get()
        assert secret.is_primary and secret.last_four == secret.value[-4:]
        client = Client.objects.get(provider=app.provider, client_id=app.client_id)
        assert client.check_secret(secret.value)
        assert app.token_url.startswith(settings.PORTAL_BASE_URL + "/sandbox/")
    manu = PrivateApp.objects.get(tenant=acme, provider="manu_online")
    assert manu.account_ids == ["1001", "1002"]
    assert manu.redirect_uris == [settings.PORTAL_BASE_URL + "/oauth/callback/"]
    assert PrivateApp.objects.get(tenant=acme, provider="manus").pkce_mode == "pkce_secret"
    manhattan = PrivateApp.objects.get(tenant=acme, provider="manhattan_active")
    assert (manhattan.service_username, manhattan.service_password) == ("demo", "demo")


def test_demo_service_apps_work_over_http(acme, alice, http, urls):
    create_demo_apps(tenant=acme, user=alice)
    manitou = PrivateApp.objects.get(tenant=acme, provider="manitou_group")
    secret = manitou.client_secrets.get().value
    tokens = http.post(
        urls("manitou_group")["token_url"],
        data={"grant_type": "client_credentials", "scope": "Products"},
        auth=(manitou.client_id, secret),
    )
    assert tokens.status_code == 200, tokens.text
    by_key = http.get(
        urls("manitou_group")["api_base_url"] + "/v1/products",
        headers={"Ocp-Apim-Subscription-Key": manitou.subscription_key_secondary},
    )
    assert by_key.status_code == 200
    manhattan = PrivateApp.objects.get(tenant=acme, provider="manhattan_active")
    password = http.post(
        urls("manhattan_active")["token_url"],
        data={"grant_type": "password", "username": "demo", "password": "demo"},
        auth=(manhattan.client_id, manhattan.client_secrets.get().value),
    )
    assert password.status_code == 200
    assert registry.token_request_count("manhattan_active", manhattan.client_id) == 1


def test_two_tenants_get_separate_sandbox_clients(acme, globex, alice, carol):
    create_demo_apps(tenant=acme, user=alice)
    create_demo_apps(tenant=globex, user=carol)
    for app in PrivateApp.objects.all():
        client = Client.objects.get(provider=app.provider, client_id=app.client_id)
        assert client.check_secret(app.client_secrets.get().value)
