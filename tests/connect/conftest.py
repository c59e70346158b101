"""Connect tests: the portal and the emulated providers served together by `live_server`,
and every call to a provider made over real HTTP.

The portal side is driven with the Django test client (logged in with force_login); the
provider's login, account and consent pages with a `requests.Session`, like a browser would
(tests.support.connect.ProviderPerson).
"""

import pytest

from sandbox import registry
from tests import factories
from tests.support.connect import (
    ACCOUNTS,
    APP_SPECS,
    SANDBOX_PASSWORD,
    SANDBOX_USER,
    ProviderPerson,
    start,
)


@pytest.fixture
def consent_app(portal_url, acme, alice):
    """consent_app(provider, tenant=acme, **fields): factories.sandbox_app with what the
    provider's consent pages need (APP_SPECS), and the sandbox person who logs in there."""

    def make(provider: str, *, tenant=None, sandbox: dict | None = None, **fields):
        app = factories.sandbox_app(
            tenant or acme, provider, portal_url, sandbox=sandbox, **(APP_SPECS[provider] | fields)
        )
        registry.create_user(
            provider=provider,
            username=SANDBOX_USER,
            password=SANDBOX_PASSWORD,
            accounts=ACCOUNTS if provider == "manu_online" else (),
        )
        return app

    return make


@pytest.fixture
def provider_person(portal_url) -> ProviderPerson:
    return ProviderPerson(portal_url)


@pytest.fixture
def consent_callback(provider_person):
    """consent_callback(client, app, account=, decision=): click Connect, consent at the
    provider's pages, and return the callback URL the provider sent the browser to."""

    def run(client, app, **consent) -> str:
        return provider_person.consent(start(client, app), **consent)

    return run
