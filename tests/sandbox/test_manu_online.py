"""Manu Online over HTTP: login, account picker, consent, code exchange, single-use refresh."""

import pytest

from sandbox import registry
from tests import factories
from tests.support.manu_online_http import connect, exchange, refresh, start
from tests.support.sandbox_pages import CALLBACK, MANU_CLIENT, authorize, callback_params
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_account_picker_offers_only_the_apps_accounts(manu, http, urls):
    url, params = start(urls)
    page = http.get(url, params=params)
    assert 'name="password"' in page.text
    picker = http.post(
        page.url,
        data={
            "csrfmiddlewaretoken": page.text.split('name="csrfmiddlewaretoken" value="')[1][:64],
            "username": "demo",
            "password": "demo",
        },
    )
    assert 'value="1001"' in picker.text and 'value="1002"' in picker.text
    assert "1003" not in picker.text


def test_grant_redirects_with_code_state_and_issuer(manu, http, urls):
    url, params = start(urls)
    back = callback_params(authorize(http, url, params, account="1002"))
    assert back["state"] == "st-123"
    assert back["iss"] == urls("manu_online")["issuer"]
    assert back["code"]


def test_code_exchange_and_me(manu, http, urls):
    tokens = connect(http, urls, account="1002")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 30 * 60
    assert tokens["scope"] == "API_ALL"
    assert tokens["refresh_token"]
    me = http.get(
        urls("manu_online")["api_base_url"] + "/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert me.status_code == 200
    assert me.json() == {"username": "demo", "account_id": "1002", "account_name": "Acme AB"}


def test_me_rejects_bad_token(manu, http, urls):
    me = http.get(
        urls("manu_online")["api_base_url"] + "/me", headers={"Authorization": "Bearer nope"}
    )
    assert me.status_code == 401
    assert me.json()["error"] == "invalid_token"
    assert http.get(urls("manu_online")["api_base_url"] + "/me").status_code == 401


def test_code_is_single_use(manu, http, urls):
    url, params = start(urls)
    code = callback_params(authorize(http, url, params, account="1001"))["code"]
    assert exchange(http, urls, code).status_code == 200
    again = exchange(http, urls, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_needs_the_same_redirect_uri(manu, http, urls):
    url, params = start(urls)
    code = callback_params(authorize(http, url, params, account="1001"))["code"]
    wrong = exchange(http, urls, code, redirect_uri=CALLBACK + "x")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")


def test_refresh_rotates_and_old_token_is_single_use(manu, http, urls):
    first = connect(http, urls)
    second = refresh(http, urls, first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert not registry.refresh_token_is_active("manu_online", first["refresh_token"])
    assert registry.refresh_token_is_active("manu_online", second["refresh_token"])

    replay = refresh(http, urls, first["refresh_token"])
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    third = refresh(http, urls, second["refresh_token"], secret="manu-secret-2")
    assert third.status_code == 200
    assert registry.token_request_count("manu_online", "manu-app", grant_type="refresh_token") == 3


def test_wrong_secret_and_unknown_client_are_invalid_client(manu, http, urls):
    tokens = connect(http, urls)
    wrong = refresh(http, urls, tokens["refresh_token"], secret="nope")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    # The refresh token was not consumed by the refused request.
    assert registry.refresh_token_is_active("manu_online", tokens["refresh_token"])
    unknown = http.post(
        urls("manu_online")["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": "who"},
    )
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")


def test_client_credentials_only_in_the_form_body(manu, http, urls):
    tokens = connect(http, urls)
    as_json = http.post(
        urls("manu_online")["token_url"],
        json={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "manu-app",
            "client_secret": "manu-secret-1",
        },
    )
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    as_basic = http.post(
        urls("manu_online")["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("manu-app", "manu-secret-1"),
    )
    assert as_basic.status_code == 401


def test_lifetimes_are_configurable(manu, http, urls):
    factories.sandbox_client(MANU_CLIENT, access_lifetime=1, refresh_lifetime=1)
    tokens = connect(http, urls)
    assert tokens["expires_in"] == 1

    def me():
        return http.get(
            urls("manu_online")["api_base_url"] + "/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )

    # The access token lives one second: the API refuses it once that has passed.
    wait_for(lambda: me().status_code == 401, timeout=10)
    assert refresh(http, urls, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_scopes_are_comma_separated(manu, http, urls):
    url, params = start(urls, scope="API_ALL,API_READ")
    code = callback_params(authorize(http, url, params, account="1001"))["code"]
    assert exchange(http, urls, code).json()["scope"] == "API_ALL,API_READ"
    url, params = start(urls, scope="API_ALL API_READ")
    refused = callback_params(http.get(url, params=params, allow_redirects=False))
    assert refused["error"] == "invalid_scope"
    assert refused["state"] == "st-123"


def test_deny_returns_access_denied(manu, http, urls):
    url, params = start(urls)
    back = callback_params(authorize(http, url, params, account="1001", decision="deny"))
    assert back["error"] == "access_denied"
    assert back["state"] == "st-123"
    assert "code" not in back


def test_single_eligible_account_skips_the_picker(manu, http, urls):
    registry.create_user(
        provider="manu_online",
        username="solo",
        password="pw",
        accounts=[{"id": "1001", "name": "Acme Oy"}, {"id": "9999", "name": "Other"}],
    )
    url, params = start(urls)
    back = callback_params(authorize(http, url, params, username="solo", password="pw"))
    tokens = exchange(http, urls, back["code"]).json()
    me = http.get(
        urls("manu_online")["api_base_url"] + "/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ).json()
    assert me["account_id"] == "1001"


def test_wrong_password_shows_the_login_again(manu, http, urls):
    url, params = start(urls)
    page = http.get(url, params=params)
    token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    again = http.post(
        page.url, data={"csrfmiddlewaretoken": token, "username": "demo", "password": "bad"}
    )
    assert again.status_code == 200
    assert "Invalid username or password" in again.text
    assert 'id="grant"' not in again.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        CALLBACK + "x",
        CALLBACK.rstrip("/"),
        CALLBACK.upper(),
        CALLBACK + "?next=/",
        "https://evil.example/oauth/callback/",
        "",
    ],
)
def test_redirect_uri_must_match_exactly_and_is_never_followed(manu, http, urls, redirect_uri):
    url, params = start(urls, redirect_uri=redirect_uri)
    page = http.get(url, params=params, allow_redirects=False)
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "not registered" in page.text


def test_unknown_client_gets_an_error_page(manu, http, urls):
    url, params = start(urls, client_id="nobody")
    page = http.get(url, params=params, allow_redirects=False)
    assert page.status_code == 400 and "Location" not in page.headers


def test_sandbox_login_does_not_log_into_the_portal(manu, http, urls, live_server):
    url, params = start(urls)
    callback_params(authorize(http, url, params, account="1001"))
    home = http.get(live_server.url + "/", allow_redirects=False)
    assert home.status_code == 302
    assert "/login/" in home.headers["Location"]
