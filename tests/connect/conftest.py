"""Connect tests: the portal and the emulated providers served together by `live_server`,
and every call to a provider made over real HTTP.

The portal side is driven with the Django test client (logged in with force_login); the
provider's login, account and consent pages with a `requests.Session`, like a browser would.
"""

import re
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import pytest
import requests
from django.urls import reverse

from connections.models import ClientSecret, PrivateApp
from connections.providers import get_provider
from sandbox import registry, urls_for

SANDBOX_USER, SANDBOX_PASSWORD = "sam", "sandbox-pass"
ACCOUNTS = [{"id": "1001", "name": "Acme Oy"}, {"id": "1002", "name": "Acme Trading AB"}]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# Per provider: what the test app needs beyond the catalogue's defaults, as data.
APP_SPECS = {
    "manu_online": {"scopes": ["API_ALL"], "account_ids": ["1001"]},
    "manus": {"scopes": ["create_task"]},
    "manhattan_active": {"service_username": SANDBOX_USER, "service_password": SANDBOX_PASSWORD},
    "manitou_group": {"scopes": ["Products"], "subscription_key_primary": "sub-key-primary"},
}


@pytest.fixture
def portal(live_server, settings) -> str:
    """The live server's base URL, which is also the portal's own (callback URLs)."""
    settings.PORTAL_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def make_app(portal, acme, alice):
    """An app in the portal and its twin client at the sandbox, sharing one secret."""

    def make(provider: str, *, tenant=None, name: str = "", sandbox: dict | None = None, **fields):
        tenant = tenant or acme
        catalogue = get_provider(provider)
        secret = f"secret-{provider}-{tenant.slug}-0001"
        mode = fields.get("pkce_mode", "secret")
        app = PrivateApp.objects.create(
            **{
                "tenant": tenant,
                "name": name or f"{catalogue.name} {mode}",
                "provider": provider,
                "status": PrivateApp.Status.ENABLED,
                "grant_type": catalogue.grants[0].value,
                "client_id": f"{provider}-{tenant.slug}-{mode}",
                "client_auth": catalogue.client_auth.value,
                "redirect_uris": [portal + "/oauth/callback/"] if catalogue.uses_redirect else [],
                **urls_for(provider, portal),
                **APP_SPECS[provider],
                **fields,
            }
        )
        ClientSecret.objects.create(app=app, value=secret, last_four=secret[-4:], is_primary=True)
        registry.register_client(
            provider=provider,
            client_id=app.client_id,
            secrets=[secret],
            redirect_uris=app.redirect_uris,
            account_ids=app.account_ids,
            scopes=app.scopes,
            subscription_keys=[k for k in [app.subscription_key_primary] if k],
            **(sandbox or {}),
        )
        registry.create_user(
            provider=provider,
            username=SANDBOX_USER,
            password=SANDBOX_PASSWORD,
            accounts=ACCOUNTS if provider == "manu_online" else (),
        )
        return app

    return make


class Provider:
    """A person at the provider's pages: logs in, picks an account, grants or denies, and
    stops at the redirect back to the portal's callback, which it returns unfollowed."""

    def __init__(self, portal: str):
        self.http = requests.Session()
        self.callback = portal + "/oauth/callback/"

    def _follow(self, response):
        while response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(self.callback):
                return location, None
            response = self.http.get(location, allow_redirects=False, timeout=10)
        return None, response

    def consent(self, authorize_url: str, *, account: str = "", decision: str = "grant") -> str:
        back, page = self._follow(self.http.get(authorize_url, allow_redirects=False, timeout=10))
        for _ in range(4):
            if back:
                return back
            assert page.status_code == 200, page.text[:500]
            html = page.text
            data = {"csrfmiddlewaretoken": CSRF.search(html).group(1)}
            if 'id="login"' in html:
                data |= {"username": SANDBOX_USER, "password": SANDBOX_PASSWORD}
            elif 'id="choose-account"' in html:
                data["account"] = account or re.search(r'name="account" value="([^"]+)"', html)[1]
            elif 'id="grant"' in html:
                data["decision"] = decision
            else:
                raise AssertionError(f"unexpected provider page: {html[:500]}")
            back, page = self._follow(
                self.http.post(page.url, data=data, allow_redirects=False, timeout=10)
            )
        raise AssertionError("the provider never redirected back")


@pytest.fixture
def provider(portal) -> Provider:
    return Provider(portal)


def params_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def with_params(url: str, **changes) -> str:
    """The callback URL with some query parameters replaced (None drops one)."""
    params = {**params_of(url), **changes}
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return url.split("?")[0] + "?" + query


def start(client, app) -> str:
    """Click Connect: the portal answers with a redirect to the provider."""
    response = client.post(reverse("app_connect", args=[app.tenant.slug, app.pk]))
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


@pytest.fixture
def connect(provider):
    """Connect → provider consent → the callback URL the provider sent the browser to."""

    def run(client, app, **consent) -> str:
        return provider.consent(start(client, app), **consent)

    return run
