"""Connections made against the sandbox over real HTTP on the live server (see
factories.minted_connection: a minted code, exchanged by the portal like any other)."""

import pytest

from connections.models import PrivateApp
from tests import factories


@pytest.fixture
def make_sandbox_app(portal_url, acme):
    """make_sandbox_app(provider, pkce_mode=, **client): an Acme app on the sandbox, the
    keyword arguments going to its sandbox client (access_lifetime=, rate_limit=, …)."""

    def make(provider="manu_online", *, pkce_mode="secret", **client) -> PrivateApp:
        return factories.sandbox_app(
            acme, provider, portal_url, sandbox=client, pkce_mode=pkce_mode
        )

    return make


@pytest.fixture
def mint_connection(alice):
    """mint_connection(app): alice's connection of app, its tokens issued by the sandbox."""
    return lambda app: factories.minted_connection(app, user=alice)


@pytest.fixture
def answered_token_calls(monkeypatch) -> list[str]:
    """The grant type of each call the sandbox's token endpoint has finished handling, in
    order: what a test waits on for a slow call still running on the live server."""
    from sandbox.views import token as token_views

    handle = token_views.HANDLERS["token"]
    answered: list[str] = []

    def recording(request, params, caller):
        try:
            return handle(request, params, caller)
        finally:
            answered.append(params.get("grant_type", ""))

    monkeypatch.setitem(token_views.HANDLERS, "token", recording)
    return answered
