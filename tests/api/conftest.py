"""Fixtures for the token API: an app and connections made with the ORM (no provider call)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connections import apikeys
from tests import factories
from tests.support.api import ACCESS, REFRESH


@pytest.fixture
def token_connection():
    """factories.connection holding ACCESS and REFRESH, its access token expiring in
    `expires_in` (30 minutes), never refreshed so far, next refresh in 25 minutes."""

    def make(app, *, expires_in=timedelta(minutes=30), **fields):
        values = {
            "account_id": "1001",
            "account_name": "",
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "last_refreshed_at": None,
            "access_in": expires_in,
            "refresh_in": timedelta(days=730),
            "next_refresh_at": timezone.now() + timedelta(minutes=25),
        }
        return factories.connection(app, **(values | fields))

    return make


@pytest.fixture
def acme_app(acme):
    return factories.app(acme)


@pytest.fixture
def acme_conn(acme_app, token_connection):
    return token_connection(acme_app)


@pytest.fixture
def globex_conn(globex, token_connection):
    return token_connection(factories.app(globex), access_token="at-globex-secret")


@pytest.fixture
def acme_key(acme, alice) -> str:
    return apikeys.create(tenant=acme, name="billing", actor=alice).plaintext


@pytest.fixture
def api(client):
    """GET the token API with a key in the Authorization header (or none)."""

    def _get(pk, key=None, method="get", **headers):
        if key is not None:
            headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {key}")
        return getattr(client, method)(f"/api/v1/connections/{pk}/token", **headers)

    return _get
