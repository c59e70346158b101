"""Fixtures for the token API: an app and connections made with the ORM (no provider call)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connections import apikeys
from connections.models import Connection, PrivateApp

ACCESS = "at-valid-0123456789"
REFRESH = "rt-secret-must-never-leave-9876543210"


def make_app(tenant, **overrides) -> PrivateApp:
    fields = {
        "tenant": tenant,
        "name": f"Manu ERP ({tenant.slug})",
        "provider": "manu_online",
        "status": PrivateApp.Status.ENABLED,
        "grant_type": "authorization_code",
        "client_id": f"client-{tenant.slug}",
    } | overrides
    return PrivateApp.objects.create(**fields)


def make_connection(app, *, expires_in=timedelta(minutes=30), **overrides) -> Connection:
    now = timezone.now()
    fields = {
        "tenant": app.tenant,
        "app": app,
        "account_id": "1001",
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        "access_expires_at": now + expires_in,
        "refresh_expires_at": now + timedelta(days=730),
        "next_refresh_at": now + timedelta(minutes=25),
    } | overrides
    return Connection.objects.create(**fields)


@pytest.fixture
def acme_app(acme):
    return make_app(acme)


@pytest.fixture
def acme_conn(acme_app):
    return make_connection(acme_app)


@pytest.fixture
def globex_conn(globex):
    return make_connection(make_app(globex), access_token="at-globex-secret")


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
