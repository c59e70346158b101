"""Connections made against the sandbox over real HTTP on the live server.

The consent pages are the connect flow's business (tests/connect); here a code is minted as if
the user had pressed Grant, and the portal exchanges it over HTTP like any other.
"""

import uuid

import pytest
from django.utils import timezone

from connections.lifecycle.obtain import obtain_from_code
from connections.models import AuthorizationAttempt, ClientSecret, PrivateApp
from connections.providers import get_provider
from sandbox import registry
from sandbox.grants import new_code
from sandbox.models import Client
from sandbox.profiles import get_profile, urls_for


@pytest.fixture
def portal_url(live_server, settings):
    settings.PORTAL_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def make_app(portal_url, acme, alice):
    def _make(provider="manu_online", *, pkce_mode="secret", **client_kwargs) -> PrivateApp:
        client_id = f"{provider}-{uuid.uuid4().hex[:12]}"
        secret = f"secret-{uuid.uuid4().hex}"
        callback = f"{portal_url}/oauth/callback/"
        catalogue = get_provider(provider)
        scopes = list(catalogue.default_scopes or catalogue.known_scopes[:1])
        registry.register_client(
            provider=provider,
            client_id=client_id,
            secrets=[secret],
            redirect_uris=[callback],
            scopes=scopes,
            **client_kwargs,
        )
        app = PrivateApp.objects.create(
            tenant=acme,
            name=f"{catalogue.name} {client_id}",
            provider=provider,
            status=PrivateApp.Status.ENABLED,
            grant_type=catalogue.grants[0],
            client_id=client_id,
            client_auth=catalogue.client_auth,
            pkce_mode=pkce_mode,
            redirect_uris=[callback],
            scopes=scopes,
            token_rate_limit=client_kwargs.get("rate_limit"),
            token_rate_window=client_kwargs.get("rate_window"),
            **urls_for(provider, portal_url),
        )
        ClientSecret.objects.create(app=app, value=secret, last_four=secret[-4:], is_primary=True)
        return app

    return _make


@pytest.fixture
def connect(alice):
    def _connect(app: PrivateApp):
        username = f"user-{uuid.uuid4().hex[:8]}"
        user = registry.create_user(
            provider=app.provider,
            username=username,
            password="pw",
            accounts=[{"id": "1001", "name": "Acme Oy"}],
        )
        client = Client.objects.get(provider=get_profile(app.provider).key, client_id=app.client_id)
        code = new_code(
            get_profile(app.provider),
            client,
            user=user,
            redirect_uri=app.redirect_uris[0],
            scopes=app.scopes,
            account_id="1001",
            account_name="Acme Oy",
        )
        attempt = AuthorizationAttempt.objects.create(
            tenant=app.tenant,
            app=app,
            user=alice,
            state_hash=uuid.uuid4().hex,
            redirect_uri=app.redirect_uris[0],
            scopes=app.scopes,
            expires_at=timezone.now() + timezone.timedelta(minutes=10),
        )
        return obtain_from_code(attempt=attempt, code=code)

    return _connect


def expire_access_token(conn) -> None:
    type(conn).objects.filter(pk=conn.pk).update(
        access_expires_at=timezone.now() - timezone.timedelta(seconds=1),
        next_refresh_at=timezone.now() - timezone.timedelta(seconds=1),
    )
