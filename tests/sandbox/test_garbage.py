"""Bad input never gets a 500: a table of known-bad requests, then hypothesis-made ones."""

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.profiles import PROFILES
from tests.support.sandbox_pages import CALLBACK

pytestmark = pytest.mark.django_db(transaction=True)

PARAM_NAMES = [
    "grant_type", "code", "redirect_uri", "client_id", "client_secret", "refresh_token",
    "code_verifier", "scope", "username", "password", "token", "token_type_hint", "state",
    "response_type", "code_challenge", "code_challenge_method",
]  # fmt: skip
GRANTS = ["authorization_code", "refresh_token", "password", "client_credentials", ""]


def token_urls(urls):
    for key in PROFILES:
        provider_urls = urls(key)
        yield provider_urls["token_url"]
        if provider_urls["revoke_url"]:
            yield provider_urls["revoke_url"]


def assert_handled(response, *, json_body=True):
    assert response.status_code < 500, response.text
    assert response.headers.get("X-Request-Id")
    if json_body:
        response.json()


BAD_TOKEN_REQUESTS = [
    {"data": "{not json", "headers": {"Content-Type": "application/json"}},
    {"data": "[1, 2]", "headers": {"Content-Type": "application/json"}},
    {"data": '{"grant_type": {"a": 1}}', "headers": {"Content-Type": "application/json"}},
    {
        "data": '{"grant_type": 5, "client_id": null}',
        "headers": {"Content-Type": "application/json"},
    },
    {"data": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}},
    {"data": "grant_type=a&grant_type=b&client_id=x"},
    {"data": "client_id=%00&grant_type=refresh_token"},
    {"data": {"client_id": "x" * 300, "grant_type": "refresh_token"}},
    {"data": {"client_id": "manu-app", "client_secret": "s" * 10000}},
    {"data": "--b\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
    {"data": "whatever", "headers": {"Content-Type": "text/plain"}},
    {"data": {"grant_type": "refresh_token"}, "headers": {"Authorization": "Basic !!!"}},
    {"data": {"grant_type": "refresh_token"}, "headers": {"Authorization": "Basic bm9jb2xvbg=="}},
    {
        "data": {"grant_type": "refresh_token", "client_secret": "x"},
        "headers": {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()},
    },
    {
        "data": {"grant_type": "refresh_token"},
        "headers": {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
    },
    {"data": {"grant_type": "authorization_code", "code": "c", "client_id": "manu-app"}},
    {
        "data": {
            "grant_type": "authorization_code",
            "code": "c",
            "client_id": "manu-app",
            "client_secret": "manu-secret-1",
            "code_verifier": "\u2603" * 50,
        }
    },
]


@pytest.mark.parametrize("request_kwargs", BAD_TOKEN_REQUESTS)
def test_bad_token_requests_are_4xx_json(manu, manus, http, urls, request_kwargs):
    for url in token_urls(urls):
        assert_handled(http.post(url, **request_kwargs))


def test_wrong_methods(manu, http, urls):
    for url in token_urls(urls):
        response = http.get(url)
        assert response.status_code == 405
        assert_handled(response)


BAD_AUTHORIZE_PARAMS = [
    {},
    {"client_id": "manu-app"},
    {"client_id": "\x00", "redirect_uri": CALLBACK},
    {"client_id": "x" * 1000, "redirect_uri": CALLBACK},
    {"client_id": "manu-app", "redirect_uri": CALLBACK, "response_type": "token"},
    {"client_id": "manu-app", "redirect_uri": CALLBACK, "scope": ",,,"},
    {"client_id": "manu-app", "redirect_uri": CALLBACK, "state": "\n\r<script>"},
    {"client_id": "client_manus", "redirect_uri": CALLBACK, "code_challenge_method": "S256"},
    {"client_id": "client_manus", "redirect_uri": CALLBACK, "code_challenge": "short"},
]


@pytest.mark.parametrize("params", BAD_AUTHORIZE_PARAMS)
def test_bad_authorize_requests(manu, manus, http, urls, params):
    for key in ("manu_online", "manus"):
        response = http.get(urls(key)["authorize_url"], params=params, allow_redirects=False)
        assert_handled(response, json_body=False)


def test_unknown_flow_and_forged_posts(manu, http, urls, live_server):
    flow = live_server.url + "/sandbox/manu-online/_authorize/nope"
    assert http.get(flow).status_code == 400
    # Without the CSRF token the portal's CSRF protection refuses the form.
    assert http.post(flow, data={"username": "demo"}).status_code == 403


def test_bad_bearer_headers(manu, http, urls):
    apis = [
        urls("manu_online")["api_base_url"] + "/me",
        urls("manus")["api_base_url"] + "/v2/task.list",
        urls("manitou_group")["api_base_url"] + "/v1/products",
        urls("manhattan_active")["api_base_url"]
        + "/organization/api/organization/user/allDetails/userId/x",
    ]
    for header in ["Bearer", "Bearer ", "Basic abc", "bearer \t x", "Bearer a b c", "x" * 5000]:
        for api in apis:
            response = http.get(api, headers={"Authorization": header})
            assert response.status_code == 401
            assert_handled(response)


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
values = st.one_of(st.text(max_size=60), st.sampled_from(GRANTS), st.just("manu-app"))
bodies = st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=10), values, max_size=8)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies,
    as_json=st.booleans(),
    # requests refuses to send a header value that starts with whitespace (and a server
    # strips it anyway), so generated values start with something visible or are empty.
    auth=st.one_of(st.none(), printable.map(lambda s: "Basic " + s), printable.map(str.lstrip)),
    which=st.integers(min_value=0, max_value=10),
)
def test_random_token_requests_never_500(manu, manus, http, urls, body, as_json, auth, which):
    endpoints = list(token_urls(urls))
    url = endpoints[which % len(endpoints)]
    headers = {"Authorization": auth} if auth is not None else {}
    if as_json:
        response = http.post(
            url, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
        )
    else:
        response = http.post(url, data=body, headers=headers)
    assert_handled(response)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(params=bodies, provider=st.sampled_from(["manu_online", "manus"]))
def test_random_authorize_requests_never_500(manu, manus, http, urls, params, provider):
    response = http.get(urls(provider)["authorize_url"], params=params, allow_redirects=False)
    assert_handled(response, json_body=False)
