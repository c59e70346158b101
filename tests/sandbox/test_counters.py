"""What the providers counted: each refresh token's presentations, and the live grants."""

import hashlib
import threading
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from sandbox import faults, registry
from sandbox.models import Token
from tests import factories
from tests.support import manu_online_http as manu_online
from tests.support import manus_http
from tests.support.sandbox_pages import MANUS_CLIENT

pytestmark = pytest.mark.django_db(transaction=True)


def presented(refresh_token: str) -> int:
    return registry.presentations("manu_online", refresh_token)


def test_presentations_count_successes_refusals_and_injected_faults(manu, http, urls):
    rt = manu_online.connect(http, urls)["refresh_token"]
    assert presented(rt) == 0  # the code exchange presented no refresh token
    faults.inject(provider="manu_online", client_id="manu-app", kind="error_5xx", status=503)
    assert manu_online.refresh(http, urls, rt).status_code == 503
    assert presented(rt) == 1
    faults.inject(provider="manu_online", client_id="manu-app", kind="rate_limit")
    assert manu_online.refresh(http, urls, rt).status_code == 429
    assert presented(rt) == 2
    assert manu_online.refresh(http, urls, rt, secret="wrong").status_code == 401
    assert presented(rt) == 3
    ok = manu_online.refresh(http, urls, rt)
    assert ok.status_code == 200
    assert presented(rt) == 4
    reused = manu_online.refresh(http, urls, rt)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert presented(rt) == 5
    assert presented(ok.json()["refresh_token"]) == 0
    assert registry.most_presented("manu_online", "manu-app") == 5


def test_presentations_count_lost_and_trickled_answers(manu, http, urls):
    rt = manu_online.connect(http, urls)["refresh_token"]
    faults.inject(provider="manu_online", client_id="manu-app", kind="lost_response")
    assert manu_online.refresh(http, urls, rt).status_code == 502
    assert manu_online.refresh(http, urls, rt).status_code == 400  # the retry: reuse
    assert presented(rt) == 2
    # The pair issued by the lost call, which the client never saw, is live.
    assert len(registry.live_refresh_tokens("manu_online", "manu-app")) == 1
    fresh = manu_online.connect(http, urls)["refresh_token"]
    faults.inject(provider="manu_online", client_id="manu-app", kind="trickle", latency_ms=100)
    assert manu_online.refresh(http, urls, fresh).status_code == 200
    assert presented(fresh) == 1


def test_presentations_when_the_client_rate_limit_answers(manus, http, urls):
    tokens = manus_http.connect(http, urls)  # one call of the window
    factories.sandbox_client(MANUS_CLIENT, rate_limit=2, rate_window=60)
    body = manus_http.refresh_body(tokens["refresh_token"])
    ok = manus_http.token(http, urls, body)  # JSON body, the second call
    assert ok.status_code == 200, ok.text
    new = ok.json()["refresh_token"]
    # Client identified by HTTP Basic; the window is full.
    limited = manus_http.token(
        http,
        urls,
        {"grant_type": "refresh_token", "refresh_token": new},
        auth=("client_manus", "manus-secret"),
    )
    assert limited.status_code == 429
    assert registry.presentations("manus", tokens["refresh_token"]) == 1
    assert registry.presentations("manus", new) == 1
    assert registry.most_presented("manus", "client_manus") == 1


def test_presentations_ignore_other_clients_and_unknown_tokens(manu, http, urls):
    rt = manu_online.connect(http, urls)["refresh_token"]
    registry.register_client(
        provider="manu_online", client_id="other-app", secrets=["other"], account_ids=["1001"]
    )
    token_url = urls("manu_online")["token_url"]
    body = {"grant_type": "refresh_token", "client_id": "other-app", "client_secret": "other"}
    stolen = http.post(token_url, data=body | {"refresh_token": rt})
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    unknown = manu_online.refresh(http, urls, "never-issued")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    assert presented(rt) == 0
    assert presented("never-issued") == 0
    assert registry.presentations("manus", rt) == 0  # another provider's view
    assert registry.most_presented("manu_online", "manu-app") == 0
    assert registry.most_presented("manu_online", "other-app") == 0
    assert registry.most_presented("manu_online", "nobody") == 0


def test_concurrent_presentations_each_count(manu, urls):
    with requests.Session() as session:
        rt = manu_online.connect(session, urls)["refresh_token"]
    statuses = []

    def present():
        with requests.Session() as session:
            statuses.append(manu_online.refresh(session, urls, rt).status_code)

    threads = [threading.Thread(target=present) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [400] * 5  # single use
    assert presented(rt) == 6


def test_token_hash_is_the_stored_sha256():
    assert registry.token_hash("abc") == hashlib.sha256(b"abc").hexdigest()


def test_live_refresh_tokens_shrink_after_rotation_and_revoke(manus, http, urls):
    def live() -> list[str]:
        return registry.live_refresh_tokens("manus", "client_manus")

    assert live() == []
    first = manus_http.connect(http, urls)
    second = manus_http.connect(http, urls)
    h = registry.token_hash
    assert live() == [h(first["refresh_token"]), h(second["refresh_token"])]
    rotated = manus_http.token(http, urls, manus_http.refresh_body(first["refresh_token"]))
    assert rotated.status_code == 200, rotated.text
    third = rotated.json()
    assert live() == [h(second["refresh_token"]), h(third["refresh_token"])]
    revoked = http.post(
        urls("manus")["revoke_url"],
        json={
            "token": second["access_token"],  # revokes its whole pair
            "client_id": "client_manus",
            "client_secret": "manus-secret",
        },
    )
    assert revoked.status_code == 200
    assert live() == [h(third["refresh_token"])]
    # Expired refresh tokens are not live either; access tokens never are listed.
    Token.objects.filter(value_hash=h(third["refresh_token"])).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert live() == []
    assert registry.live_refresh_tokens("manus", "nobody") == []
