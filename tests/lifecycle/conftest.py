"""Connections made against the sandbox over real HTTP on the live server (see
sandbox.shortcuts: a minted code, exchanged by the portal like any other)."""

import pytest
from django.utils import timezone

from connections import oauth
from connections.models import PrivateApp
from connections.oauth import TokenSet
from sandbox.shortcuts import minted_connection, sandbox_app


@pytest.fixture
def portal_url(live_server, settings):
    settings.PORTAL_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def make_app(portal_url, acme, alice):
    def _make(provider="manu_online", **kwargs) -> PrivateApp:
        return sandbox_app(tenant=acme, provider=provider, base_url=portal_url, **kwargs)

    return _make


@pytest.fixture
def connect(alice):
    return lambda app: minted_connection(app, user=alice)


def expire_access_token(conn) -> None:
    type(conn).objects.filter(pk=conn.pk).update(
        access_expires_at=timezone.now() - timezone.timedelta(seconds=1),
        next_refresh_at=timezone.now() - timezone.timedelta(seconds=1),
    )


def provider_refresh(conn) -> TokenSet:
    """What a stalled worker's request did: spend the connection's refresh token at the
    provider over HTTP, the answer kept here instead of stored."""
    app = conn.app
    creds = oauth.credentials_for(app, app.active_secrets()[0].value)
    return oauth.refresh(app, creds, refresh_token=conn.refresh_token)


@pytest.fixture
def notices_inline(monkeypatch):
    """Run the notice tasks queued on commit right away, in this process."""
    from portal.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
