"""The connect flow driven over real HTTP: a person at the provider's pages, and the URLs the
portal and the provider send the browser to."""

import re
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import requests
from django.urls import reverse

SANDBOX_USER, SANDBOX_PASSWORD = "sam", "sandbox-pass"
ACCOUNTS = [{"id": "1001", "name": "Acme Oy"}, {"id": "1002", "name": "Acme Trading AB"}]
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# Per provider: what a connect test's app needs beyond the catalogue's defaults, as data.
APP_SPECS = {
    "manu_online": {"scopes": ["API_ALL"], "account_ids": ["1001"]},
    "manus": {"scopes": ["create_task"]},
    "manhattan_active": {"service_username": SANDBOX_USER, "service_password": SANDBOX_PASSWORD},
    "manitou_group": {"scopes": ["Products"], "subscription_key_primary": "sub-key-primary"},
}


class ProviderPerson:
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
