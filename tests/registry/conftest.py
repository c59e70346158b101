"""Apps registered the way the registration form does it (services.app_create)."""

import pytest

from connections.models import Connection
from tests import factories

CALLBACK = ["https://portal.example/oauth/callback/"]


@pytest.fixture
def manu_app(acme, alice):
    return factories.registered_app(
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
    return factories.registered_app(
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
    """connection_of(app, user, status=active): a connection of `app` made by `user`."""

    def make(app, user, status=Connection.Status.ACTIVE):
        return factories.connection(app, user=user, status=status)

    return make
