"""Live-server fixtures for the emulated providers: every test talks real HTTP to them."""

import pytest
import requests

from sandbox import registry, urls_for
from tests import factories
from tests.support.sandbox_pages import MANU_CLIENT, MANUS_CLIENT


@pytest.fixture
def urls(live_server):
    """urls("manus")["token_url"] etc., pointing at the live server."""
    return lambda provider: urls_for(provider, live_server.url)


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def manu(db):
    """A Manu Online client allowed on two of the user's three accounts."""
    registry.create_user(
        provider="manu_online",
        username="demo",
        password="demo",
        accounts=[
            {"id": "1001", "name": "Acme Oy"},
            {"id": "1002", "name": "Acme AB"},
            {"id": "1003", "name": "Not For This App Ltd"},
        ],
    )
    return factories.sandbox_client(MANU_CLIENT)


@pytest.fixture
def manus(db):
    registry.create_user(provider="manus", username="demo", password="demo")
    return factories.sandbox_client(MANUS_CLIENT)
