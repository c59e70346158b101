"""Fault injection on the token endpoints: 5xx, 429, latency, the lost and the trickled
response."""

import json
import time

import pytest

from sandbox import faults, registry
from sandbox.models import Fault
from sandbox.views import token as token_views
from tests.support.manu_online_http import connect, refresh

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
    assert time.monotonic() - started >= 0.6  # a lower bound the injected sleep guarantees
    assert slow.status_code == 200
    assert refresh(http, urls, slow.json()["refresh_token"]).status_code == 200
    # One call took the latency; the next ran at normal speed, with none left to take.
    assert pending("latency") == [0]


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


def pending(kind: str) -> list[int]:
    """remaining of each manu-app fault of this kind, oldest first."""
    rows = Fault.objects.filter(provider="manu_online", client_id="manu-app", kind=kind)
    return list(rows.order_by("created_at", "pk").values_list("remaining", flat=True))


def assert_token_reply(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]
    assert int(response.headers["Content-Length"]) == len(response.content)
    body = json.loads(response.content)
    assert body["access_token"] and body["refresh_token"] and body["token_type"] == "bearer"
    return body


def test_trickle_processes_the_refresh_then_answers_slowly(manu, http, urls):
    tokens = connect(http, urls)
    faults.inject(provider="manu_online", client_id="manu-app", kind="trickle", latency_ms=600)
    started = time.monotonic()
    slow = http.post(
        urls("manu_online")["token_url"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "manu-app",
            "client_secret": "manu-secret-1",
        },
        stream=True,
    )
    body = assert_token_reply(slow)  # reading .content waits for the last piece
    assert time.monotonic() - started >= 0.6  # a lower bound the trickle's sleeps guarantee
    # Processed and committed: the old refresh token is consumed, the new one works.
    assert not registry.refresh_token_is_active("manu_online", tokens["refresh_token"])
    assert registry.refresh_token_is_active("manu_online", body["refresh_token"])
    assert pending("trickle") == [0]
    assert_token_reply(refresh(http, urls, body["refresh_token"]))


def test_trickle_through_the_http_control_endpoint(manu, http, urls, live_server):
    tokens = connect(http, urls)
    control = live_server.url + "/sandbox/manu-online/_control/faults"
    created = http.post(
        control, json={"client_id": "manu-app", "kind": "trickle", "latency_ms": 300, "count": 2}
    )
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "trickle"
    first = assert_token_reply(refresh(http, urls, tokens["refresh_token"]))
    second = assert_token_reply(refresh(http, urls, first["refresh_token"]))
    assert pending("trickle") == [0]
    assert registry.refresh_token_is_active("manu_online", second["refresh_token"])


def test_trickle_sends_an_error_answer_whole_too(manu, http, urls):
    tokens = connect(http, urls)
    assert refresh(http, urls, tokens["refresh_token"]).status_code == 200
    faults.inject(provider="manu_online", client_id="manu-app", kind="trickle", latency_ms=200)
    reused = refresh(http, urls, tokens["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert reused.headers["Cache-Control"] == "no-store"
    assert int(reused.headers["Content-Length"]) == len(reused.content)
    assert pending("trickle") == [0]


def test_lost_response_leaves_a_trickle_for_the_next_call(manu, http, urls):
    tokens = connect(http, urls)
    faults.inject(provider="manu_online", client_id="manu-app", kind="trickle", latency_ms=200)
    faults.inject(provider="manu_online", client_id="manu-app", kind="lost_response")
    assert refresh(http, urls, tokens["refresh_token"]).status_code == 502
    assert pending("trickle") == [1]
    assert pending("lost_response") == [0]


class FakeClock:
    """time for sandbox.views.token: sleeping advances it, and so can the test."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


def test_trickled_pieces_are_the_body_and_sleep_at_most_latency(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(token_views, "time", clock)
    body = json.dumps({"access_token": "a" * 40, "refresh_token": "r" * 40}).encode()
    pieces = list(token_views.trickled(body, 600))
    assert b"".join(pieces) == body
    assert len(pieces) == token_views.TRICKLE_PIECES
    assert all(pieces)
    # Evenly spread, adding up to the latency.
    assert sum(clock.slept) == pytest.approx(0.6)
    assert max(clock.slept) == pytest.approx(min(clock.slept))
    # A slow writer (each piece taking 0.1 s to send) makes the sleeps shorter, never longer.
    clock.slept.clear()
    for _ in token_views.trickled(body, 600):
        clock.now += 0.1
    assert sum(clock.slept) <= 0.6
    # No latency: no sleeping; a two-byte body still comes in two pieces.
    clock.slept.clear()
    assert list(token_views.trickled(b"{}", 0)) == [b"{", b"}"]
    assert sum(clock.slept) == 0


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
    assert "trickle" in faults.KINDS
