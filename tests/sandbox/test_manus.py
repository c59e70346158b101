"""Manus over HTTP: the three PKCE modes, JSON / form / Basic, rotation that revokes the old
pair, revocation, the rate limit, X-Request-Id and the documented error codes."""

import re
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox import registry
from sandbox.models import Code
from tests import factories
from tests.support.manus_http import code_body, connect, get_code, refresh_body, token
from tests.support.sandbox_pages import (
    CALLBACK,
    MANUS_CLIENT,
    callback_params,
    pkce_pair,
    post_form,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def tasks(http, urls, access_token):
    return http.get(
        urls("manus")["api_base_url"] + "/v2/task.list",
        headers={"Authorization": f"Bearer {access_token}"},
    )


@pytest.mark.parametrize("mode", ["pkce_secret", "secret", "pkce"])
def test_each_mode_connects_and_calls_the_api(manus, http, urls, mode):
    tokens = connect(http, urls, mode)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 86400
    assert tokens["scope"] == "create_task"
    assert re.fullmatch(r"refresh_\w{22}_\w{22}_\w{22}", tokens["refresh_token"])
    listed = tasks(http, urls, tokens["access_token"])
    assert listed.status_code == 200
    assert listed.json()["ok"] is True and listed.json()["user"] == "demo"


def test_code_format_and_single_use(manus, http, urls):
    verifier, challenge = pkce_pair()
    code = get_code(http, urls, challenge)
    assert code.startswith("code_client_manus_")
    body = code_body(code, client_secret="manus-secret", code_verifier=verifier)
    assert token(http, urls, body).status_code == 200
    again = token(http, urls, body)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_code_expires_after_ten_minutes(manus, http, urls):
    code = get_code(http, urls)
    Code.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = token(http, urls, code_body(code, client_secret="manus-secret"))
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_grant")


def test_pkce_verifier_is_checked(manus, http, urls):
    _, challenge = pkce_pair()
    code = get_code(http, urls, challenge)
    other_verifier, _ = pkce_pair()
    wrong = token(
        http, urls, code_body(code, client_secret="manus-secret", code_verifier=other_verifier)
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    missing = token(http, urls, code_body(code, client_secret="manus-secret"))
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant")


def test_secret_mode_needs_the_secret(manus, http, urls):
    code = get_code(http, urls)
    response = token(http, urls, code_body(code))
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_plain_challenge_method_is_refused(manus, http, urls):
    params = {
        "client_id": "client_manus",
        "redirect_uri": CALLBACK,
        "state": "s1",
        "code_challenge": "a" * 43,
        "code_challenge_method": "plain",
    }
    back = callback_params(
        http.get(urls("manus")["authorize_url"], params=params, allow_redirects=False)
    )
    assert back["error"] == "invalid_request"


def test_form_body_and_basic_auth(manus, http, urls):
    code = get_code(http, urls)
    response = http.post(
        urls("manus")["token_url"],
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=("client_manus", "manus-secret"),
    )
    assert response.status_code == 200, response.text
    refreshed = http.post(
        urls("manus")["token_url"],
        data=refresh_body(response.json()["refresh_token"]),
    )
    assert refreshed.status_code == 200


def test_refresh_revokes_the_old_pair(manus, http, urls):
    first = connect(http, urls)
    second = token(
        http,
        urls,
        refresh_body(first["refresh_token"]),
    )
    assert second.status_code == 200
    assert tasks(http, urls, first["access_token"]).status_code == 401
    assert not registry.token_is_active("manus", first["access_token"])
    assert tasks(http, urls, second.json()["access_token"]).status_code == 200
    replay = token(
        http,
        urls,
        refresh_body(first["refresh_token"]),
    )
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")


def test_pkce_only_refresh_needs_no_secret_but_pkce_secret_does(manus, http, urls):
    public = connect(http, urls, "pkce")
    body = {"grant_type": "refresh_token", "client_id": "client_manus"}
    assert token(http, urls, body | {"refresh_token": public["refresh_token"]}).status_code == 200
    confidential = connect(http, urls, "pkce_secret")
    refused = token(http, urls, body | {"refresh_token": confidential["refresh_token"]})
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    # code_verifier on a refresh is accepted, not required (see sandbox.grants.refresh_token).
    verifier, _ = pkce_pair()
    accepted = token(
        http,
        urls,
        body
        | {
            "refresh_token": confidential["refresh_token"],
            "client_secret": "manus-secret",
            "code_verifier": verifier,
        },
    )
    assert accepted.status_code == 200


def test_revoke_stops_the_token(manus, http, urls):
    tokens = connect(http, urls)
    revoke_url = urls("manus")["revoke_url"]
    response = http.post(
        revoke_url,
        json={
            "token": tokens["access_token"],
            "token_type_hint": "access_token",
            "client_id": "client_manus",
            "client_secret": "manus-secret",
        },
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"]
    assert tasks(http, urls, tokens["access_token"]).status_code == 401
    assert not registry.refresh_token_is_active("manus", tokens["refresh_token"])
    unknown = http.post(
        revoke_url,
        data={
            "token": "never-issued",
            "client_id": "client_manus",
            "client_secret": "manus-secret",
        },
    )
    assert unknown.status_code == 200
    bad_client = http.post(
        revoke_url, json={"token": "x", "client_id": "client_manus", "client_secret": "wrong"}
    )
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")


def test_pkce_issued_tokens_revoke_without_a_secret(manus, http, urls):
    tokens = connect(http, urls, "pkce")
    response = http.post(
        urls("manus")["revoke_url"],
        json={"token": tokens["refresh_token"], "client_id": "client_manus"},
    )
    assert response.status_code == 200
    assert not registry.token_is_active("manus", tokens["access_token"])


def test_rate_limit_answers_429_with_retry_after(manus, http, urls):
    assert manus.rate_limit == 60 and manus.rate_window == 60  # seed 003 default
    factories.sandbox_client(MANUS_CLIENT, rate_limit=3, rate_window=60)
    body = refresh_body()
    answers = [token(http, urls, body) for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 400]
    # Revoke counts against the same limit (seed 003).
    limited = http.post(urls("manus")["revoke_url"], json={**body, "token": "x"})
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-Request-Id"]
    # Another client id has its own budget.
    registry.register_client(provider="manus", client_id="other", secrets=["s"], rate_limit=3)
    assert token(http, urls, body | {"client_id": "other", "client_secret": "s"}).status_code == 400


def test_rate_limit_holds_across_threads(manus, live_server, urls):
    import requests

    registry.register_client(
        provider="manus", client_id="busy", secrets=["s"], rate_limit=5, rate_window=60
    )
    body = refresh_body(client_id="busy", secret="s")
    statuses = []

    def call():
        statuses.append(
            requests.post(urls("manus")["token_url"], json=body, timeout=30).status_code
        )

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [400] * 5 + [429] * 7
    assert registry.token_request_count("manus", "busy") == 12


def test_rate_window_reopens(manus, http, urls):
    registry.register_client(
        provider="manus", client_id="w", secrets=["s"], rate_limit=1, rate_window=1
    )
    body = refresh_body(client_id="w", secret="s")
    assert token(http, urls, body).status_code == 400
    assert token(http, urls, body).status_code == 429
    # Once the one-second window has passed, the request is answered again (a 429 does not
    # count against the window, so asking meanwhile does not hold it shut).
    wait_for(lambda: token(http, urls, body).status_code == 400, timeout=10)


def test_widening_scopes_invalidates_tokens(manus, http, urls):
    tokens = connect(http, urls)
    # Same scopes again: tokens survive.
    factories.sandbox_client(MANUS_CLIENT)
    assert registry.token_is_active("manus", tokens["access_token"])
    factories.sandbox_client(MANUS_CLIENT, connector_uids=["bbb0df76-github", "ccc-notion"])
    assert tasks(http, urls, tokens["access_token"]).status_code == 401
    assert not registry.refresh_token_is_active("manus", tokens["refresh_token"])


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"client_id": "client_manus", "client_secret": "manus-secret"}, 400, "invalid_request"),
        (
            {
                "grant_type": "password",
                "client_id": "client_manus",
                "client_secret": "manus-secret",
            },
            400,
            "unsupported_grant_type",
        ),
        (
            {
                "grant_type": "authorization_code",
                "client_id": "client_manus",
                "client_secret": "manus-secret",
            },
            400,
            "invalid_request",
        ),
        (
            refresh_body("nope"),
            400,
            "invalid_grant",
        ),
        (
            refresh_body("nope", client_id="nobody", secret="x"),
            401,
            "invalid_client",
        ),
    ],
)
def test_documented_error_codes(manus, http, urls, body, status, error):
    response = token(http, urls, body)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert response.headers["X-Request-Id"]


def test_refresh_cannot_widen_scope(manus, http, urls):
    tokens = connect(http, urls)
    response = token(
        http,
        urls,
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "client_manus",
            "client_secret": "manus-secret",
            "scope": "create_task use_connectors",
        },
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")


def test_consent_names_app_scopes_and_connectors(manus, http, urls):
    page = http.get(
        urls("manus")["authorize_url"],
        params={
            "client_id": "client_manus",
            "redirect_uri": CALLBACK,
            "state": "s",
            "scope": "create_task use_connectors",
        },
    )
    consent = post_form(http, page, {"username": "demo", "password": "demo"})
    assert "Acme tasks" in consent.text
    assert "use_connectors" in consent.text and "bbb0df76-github" in consent.text
    assert 'id="grant"' in consent.text


def test_every_response_has_a_request_id(manus, http, urls):
    manus_urls = urls("manus")
    responses = [
        http.get(
            manus_urls["authorize_url"],
            params={"client_id": "client_manus", "redirect_uri": CALLBACK},
        ),
        http.get(manus_urls["authorize_url"], params={"client_id": "nobody"}),
        http.get(manus_urls["token_url"]),
        http.post(
            manus_urls["token_url"], data="garbage", headers={"Content-Type": "application/json"}
        ),
        http.get(manus_urls["api_base_url"] + "/v2/task.list"),
        http.get(manus_urls["api_base_url"] + "/no/such/path"),
    ]
    ids = [r.headers.get("X-Request-Id") for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)
