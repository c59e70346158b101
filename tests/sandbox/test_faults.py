"""Fault injection on the token endpoints: 5xx, 429, latency and the lost response."""

import time

import pytest

from sandbox import faults, registry
from tests.sandbox.test_manu_online import connect, refresh

pytestmark = pytest.mark.django_db(transaction=True)


def test_error_5xx_fails_the_next_n_calls(manu, http, urls):
    tokens = connect(http, urls)
    faults.inject(
        provider="manu_online", client_id="manu-app", kind="error_5xx", count=2, status=503
    )
    for _ in range(2):
        failed = refresh(http, urls, tokens["refresh_token"])
        assert (failed.status_code, failed.json()["error"]) == (503, "server_error")
    # The failed calls did not consume the refresh token.
    assert refresh(http, urls, tokens["refresh_token"]).status_code == 200


def test_rate_limit_fault(manu, http, urls):
    tokens = connect(http, urls)
    faults.inject(provider="manu_online", client_id="manu-app", kind="rate_limit", retry_after=7)
    limited = refresh(http, urls, tokens["refresh_token"])
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["error"] == "rate_limited"
    assert refresh(http, urls, tokens["refresh_token"]).status_code == 200


def test_latency_then_normal_processing(manu, http, urls):
    tokens = connect(http, urls)
    faults.inject(provider="manu_online", client_id="manu-app", kind="latency", latency_ms=600)
    started = time.monotonic()
    slow = refresh(http, urls, tokens["refresh_token"])
    assert time.monotonic() - started >= 0.6
    assert slow.status_code == 200
    started = time.monotonic()
    assert refresh(http, urls, slow.json()["refresh_token"]).status_code == 200
    assert time.monotonic() - started < 0.6


def test_lost_response_processes_the_refresh(manu, http, urls):
    tokens = connect(http, urls)
    before = registry.token_request_count("manu_online", "manu-app")
    faults.inject(provider="manu_online", client_id="manu-app", kind="lost_response")
    lost = refresh(http, urls, tokens["refresh_token"])
    assert lost.status_code == 502
    # The provider consumed the token and issued a new pair the client never saw.
    assert not registry.refresh_token_is_active("manu_online", tokens["refresh_token"])
    retry = refresh(http, urls, tokens["refresh_token"])
    assert (retry.status_code, retry.json()["error"]) == (400, "invalid_grant")
    assert registry.token_request_count("manu_online", "manu-app") == before + 2


def test_faults_apply_to_every_provider(manus, http, urls):
    registry.register_client(provider="manitou_group", client_id="m", secrets=["s"])
    faults.inject(provider="manitou_group", client_id="m", kind="error_5xx")
    body = {"grant_type": "client_credentials", "scope": "Products"}
    token_url = urls("manitou_group")["token_url"]
    assert http.post(token_url, data=body, auth=("m", "s")).status_code == 502
    assert http.post(token_url, data=body, auth=("m", "s")).status_code == 200


def test_clear_and_the_http_control_endpoint(manu, http, urls, live_server):
    tokens = connect(http, urls)
    faults.inject(provider="manu_online", client_id="manu-app", kind="error_5xx", count=5)
    assert faults.clear(provider="manu_online", client_id="manu-app") == 1
    control = live_server.url + "/sandbox/manu-online/_control/faults"
    created = http.post(control, json={"client_id": "manu-app", "kind": "error_5xx", "status": 500})
    assert created.status_code == 201, created.text
    assert refresh(http, urls, tokens["refresh_token"]).status_code == 500
    http.post(control, json={"client_id": "manu-app", "kind": "rate_limit", "count": 3})
    assert http.delete(control, params={"client_id": "manu-app"}).json() == {"cleared": 1}
    assert refresh(http, urls, tokens["refresh_token"]).status_code == 200
    bad = http.post(control, json={"client_id": "manu-app", "kind": "meteor"})
    assert bad.status_code == 400
    assert http.post(control, data="{").status_code == 400


def test_inject_validates():
    with pytest.raises(ValueError):
        faults.inject(provider="manus", client_id="x", kind="meteor")
    with pytest.raises(ValueError):
        faults.inject(provider="manus", client_id="x", kind="error_5xx", status=404)
    with pytest.raises(ValueError):
        faults.inject(provider="nowhere", client_id="x", kind="latency")
