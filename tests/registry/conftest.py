import pytest

from connections import services
from connections.models import Connection

CALLBACK = ["https://portal.example/oauth/callback/"]


def register(tenant, actor, secret: str, **fields):
    app, _ = services.app_create(tenant=tenant, actor=actor, fields=fields, client_secret=secret)
    return app


@pytest.fixture
def manu_app(acme, alice):
    return register(
        acme,
        alice,
        "first-secret-AAAA",
        provider="manu_online",
        name="Manu ERP",
        client_id="manu-client",
        redirect_uris=CALLBACK,
        account_ids=["1001"],
        scopes=["API_ALL"],
    )


@pytest.fixture
def manus_app(acme, alice):
    return register(
        acme,
        alice,
        "manus-secret-BBBB",
        provider="manus",
        name="Manus tasks",
        client_id="client_manus",
        redirect_uris=CALLBACK,
        scopes=["create_task"],
        pkce_mode="pkce_secret",
    )


@pytest.fixture
def connection_of():
    def make(app, user, status=Connection.Status.ACTIVE):
        return Connection.objects.create(tenant=app.tenant, app=app, user=user, status=status)

    return make
