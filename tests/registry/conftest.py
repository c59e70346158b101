import pytest

from connections import services
from connections.models import Connection


@pytest.fixture
def manu_app(acme, alice):
    app, _ = services.app_create(
        tenant=acme,
        actor=alice,
        fields={
            "provider": "manu_online",
            "name": "Manu ERP",
            "client_id": "manu-client",
            "redirect_uris": ["https://portal.example/oauth/callback/"],
            "account_ids": ["1001"],
            "scopes": ["API_ALL"],
        },
        client_secret="first-secret-AAAA",
    )
    return app


@pytest.fixture
def manus_app(acme, alice):
    app, _ = services.app_create(
        tenant=acme,
        actor=alice,
        fields={
            "provider": "manus",
            "name": "Manus tasks",
            "client_id": "client_manus",
            "redirect_uris": ["https://portal.example/oauth/callback/"],
            "scopes": ["create_task"],
            "pkce_mode": "pkce_secret",
        },
        client_secret="manus-secret-BBBB",
    )
    return app


@pytest.fixture
def connection_of():
    def make(app, user, status=Connection.Status.ACTIVE):
        return Connection.objects.create(tenant=app.tenant, app=app, user=user, status=status)

    return make
