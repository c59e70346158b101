"""The emulated providers' pages and clients over HTTP: the test client app's registration
(MANU_CLIENT, MANUS_CLIENT, registered with factories.sandbox_client), and a person logging
in, picking an account and consenting."""

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import requests

CALLBACK = "https://app.example/oauth/callback/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def post_form(session: requests.Session, response: requests.Response, data: dict):
    """Submit the page's form (to its own URL) with its CSRF token; do not follow to the app."""
    token = CSRF.search(response.text)
    assert token, response.text
    return session.post(
        response.url,
        data={"csrfmiddlewaretoken": token.group(1), **data},
        allow_redirects=False,
    )


def authorize(
    session: requests.Session,
    url: str,
    params: dict,
    *,
    username: str = "demo",
    password: str = "demo",
    account: str | None = None,
    decision: str = "grant",
) -> requests.Response:
    """Drive login, the account picker when it appears, and consent; return the 302 to the app."""
    page = session.get(url, params=params)
    assert page.status_code == 200, page.text
    step = post_form(session, page, {"username": username, "password": password})
    assert step.status_code == 200, step.text
    if 'name="account"' in step.text:
        step = post_form(session, step, {"account": account})
        assert step.status_code == 200, step.text
    assert 'id="grant"' in step.text
    return post_form(session, step, {"decision": decision})


def callback_params(response: requests.Response) -> dict:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


MANU_CLIENT = {
    "provider": "manu_online",
    "client_id": "manu-app",
    "name": "Acme integration",
    "secrets": ["manu-secret-1", "manu-secret-2"],
    "redirect_uris": [CALLBACK],
    "account_ids": ["1001", "1002"],
    "scopes": ["API_ALL", "API_READ"],
}
MANUS_CLIENT = {
    "provider": "manus",
    "client_id": "client_manus",
    "name": "Acme tasks",
    "secrets": ["manus-secret"],
    "redirect_uris": [CALLBACK],
    "scopes": ["create_task", "use_connectors"],
    "connector_uids": ["bbb0df76-github"],
}
