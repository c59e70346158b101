"""Whatever the Authorization header holds, the token, revoke and API endpoints answer a 4xx
JSON error, never a 500 (through the Django test client: headers as WSGI hands them over, any
byte as one latin-1 character)."""

import base64

import pytest
from django.test import Client

from sandbox.profiles import PROFILES, urls_for
from tests import factories
from tests.support.sandbox_pages import MANUS_CLIENT

pytestmark = pytest.mark.django_db

HEADERS = [
    "Basic " + "é" * 12,  # non-ASCII characters
    "Basic " + "\xff\xfe\xfd\x80",  # bytes that are not UTF-8, as WSGI decodes them (latin-1)
    "Basic " + base64.b64encode("é:ü".encode("latin-1")).decode(),  # latin-1 id and secret
    "Basic " + base64.b64encode(b"\xff\xfe:\x80").decode(),  # base64 of non-UTF-8 bytes
    "Basic !!!not base64!!!",
    "Basic bWFudXM",  # bad padding
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic \udcff\udcfe",  # what Django cannot even encode back (a lone surrogate)
    "Basic",
    "Bearer é\xff",
    "Bearer \udcff",
    "\xff\xfe",
]


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def endpoints():
    for key in PROFILES:
        urls = urls_for(key, "")
        yield urls["token_url"]
        if urls.get("revoke_url"):
            yield urls["revoke_url"]


@pytest.mark.parametrize("header", HEADERS)
def test_a_bad_authorization_header_is_a_4xx_json_error(client, header):
    factories.sandbox_client(
        MANUS_CLIENT
    )  # a known client, so a decodable header reaches authentication
    for url in endpoints():
        for data in ({"grant_type": "client_credentials"}, {"grant_type": "refresh_token"}):
            response = client.post(url, data, HTTP_AUTHORIZATION=header)
            assert response.status_code in (400, 401), (url, header, response.content[:300])
            assert response.json()["error"] in {"invalid_client", "invalid_request"}, url


@pytest.mark.parametrize("header", HEADERS)
def test_the_api_answers_401_to_a_bad_bearer(client, header):
    for key in PROFILES:
        api = urls_for(key, "")["api_base_url"]
        for path in ("/me", "/v2/task.list", "/v1/products"):
            response = client.get(api + path, HTTP_AUTHORIZATION=header)
            assert response.status_code < 500, (api + path, header)


def test_a_basic_header_still_authenticates(client):
    factories.sandbox_client(MANUS_CLIENT)
    token_url = urls_for("manus", "")["token_url"]
    good = base64.b64encode(b"client_manus:manus-secret").decode()
    response = client.post(
        token_url, {"grant_type": "refresh_token"}, HTTP_AUTHORIZATION=f"Basic {good}"
    )
    # Authenticated: the refusal is about the grant, not the client.
    assert response.json()["error"] in {"invalid_request", "unsupported_grant_type"}
