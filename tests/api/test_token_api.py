"""GET /api/v1/connections/<id>/token: a valid access token for the key's tenant, JSON errors."""

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections import apikeys
from connections.models import Connection
from tests import factories
from tests.support.api import ACCESS, REFRESH

pytestmark = pytest.mark.django_db
STATUS = Connection.Status


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "message"}
    if code:
        assert body["error"] == code
    return body


def test_happy_path(api, acme_conn, acme_key):
    response = api(acme_conn.pk, acme_key)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_at",
        "expires_in",
        "connection_id",
        "status",
    }
    assert body["access_token"] == ACCESS
    assert body["token_type"] == "Bearer"
    assert body["connection_id"] == acme_conn.pk
    assert body["status"] == "active"
    assert datetime.fromisoformat(body["expires_at"]) == acme_conn.access_expires_at
    assert isinstance(body["expires_in"], int) and 1700 < body["expires_in"] <= 1800


def test_x_api_key_header_works_too(api, acme_conn, acme_key):
    assert api(acme_conn.pk, HTTP_X_API_KEY=acme_key).status_code == 200


def test_no_session_auth(api, login, alice, acme_conn):
    login(alice)  # a logged-in browser session is not an API credential
    response = api(acme_conn.pk)
    assert_json_error(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Bearer pk_0000000000_" + "A" * 43},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        {"HTTP_X_API_KEY": "nope"},
    ],
)
def test_missing_or_bad_key_is_401(api, acme_conn, headers):
    response = api(acme_conn.pk, **headers)
    assert_json_error(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_401(api, acme, alice, acme_conn):
    new = apikeys.create(tenant=acme, name="old", actor=alice)
    assert api(acme_conn.pk, new.plaintext).status_code == 200
    apikeys.revoke(new.key, actor=alice)
    assert_json_error(api(acme_conn.pk, new.plaintext), 401, "invalid_api_key")


def test_other_tenants_connection_looks_exactly_like_a_missing_one(api, acme_key, globex_conn):
    foreign = api(globex_conn.pk, acme_key)
    missing = api(globex_conn.pk + 1000, acme_key)
    assert_json_error(foreign, 404, "not_found")
    assert foreign.content == missing.content
    assert b"at-globex-secret" not in foreign.content


def test_foreign_expired_connection_is_not_refreshed(token_connection, api, acme_key, globex):
    app = factories.app(globex, token_url="http://127.0.0.1:9/")
    conn = token_connection(app, expires_in=timedelta(minutes=-5))
    assert_json_error(api(conn.pk, acme_key), 404)
    conn.refresh_from_db()
    assert conn.failure_count == 0 and conn.status == STATUS.ACTIVE and not conn.last_error


@pytest.mark.parametrize("status", [STATUS.NEEDS_REAUTH, STATUS.REVOKED])
def test_dead_connection_is_409(token_connection, api, acme_app, acme_key, status):
    conn = token_connection(acme_app, status=status, last_error="the provider said no")
    body = assert_json_error(api(conn.pk, acme_key), 409, status)
    assert ACCESS not in json.dumps(body)


def test_provider_down_is_503_with_retry_after(token_connection, api, acme, acme_key):
    # Nothing listens on the discard port: a real, immediate transport failure on loopback.
    app = factories.app(acme, token_url="http://127.0.0.1:9/")
    conn = token_connection(app, expires_in=timedelta(minutes=-5), access_token="at-expired")
    response = api(conn.pk, acme_key)
    body = assert_json_error(response, 503, "provider_down")
    assert 1 <= int(response["Retry-After"]) <= 300
    assert "at-expired" not in json.dumps(body) and REFRESH not in json.dumps(body)
    conn.refresh_from_db()
    assert conn.refresh_token == REFRESH  # nothing was spent
    assert conn.status == STATUS.FAILING


def test_busy_is_503_with_retry_after(token_connection, api, acme_app, acme_key, monkeypatch):
    from connections.lifecycle import lease
    from connections.views import api as api_view

    monkeypatch.setattr(api_view, "WAIT_SECONDS", 0.2)
    conn = token_connection(acme_app, expires_in=timedelta(minutes=-5), access_token="at-expired")
    assert lease.acquire(conn, owner="a-refresh-in-flight")  # held past the request's wait
    response = api(conn.pk, acme_key)
    assert_json_error(response, 503, "busy")
    assert response["Retry-After"] == "1"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "head", "options"])
def test_wrong_method_is_405(api, acme_conn, acme_key, method):
    response = api(acme_conn.pk, acme_key, method=method)
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    if method != "head":
        assert_json_error(response, 405, "method_not_allowed")


def test_post_needs_no_csrf_token(acme_conn, acme_key):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/api/v1/connections/{acme_conn.pk}/token", HTTP_AUTHORIZATION=f"Bearer {acme_key}"
    )
    assert response.status_code == 405  # our answer, not Django's CSRF 403 page


def test_refresh_token_never_in_any_response(
    token_connection, api, acme, acme_app, acme_key, globex_conn
):
    down = factories.app(acme, name="down", token_url="http://127.0.0.1:9/")
    conns = [
        token_connection(acme_app),
        token_connection(acme_app, status=STATUS.NEEDS_REAUTH),
        token_connection(acme_app, status=STATUS.REVOKED),
        token_connection(acme_app, status=STATUS.FAILING),
        token_connection(down, expires_in=timedelta(minutes=-1)),
        globex_conn,
    ]
    for conn in conns:
        for key in (acme_key, "garbage", None):
            response = api(conn.pk, key)
            assert response.status_code != 500
            assert REFRESH.encode() not in response.content
            assert b"refresh_token" not in response.content


def test_token_inside_the_expiry_margin_is_not_handed_out(token_connection, api, acme, acme_key):
    # A token about to expire would fail in the caller's hands: the lifecycle refreshes it
    # first; here the provider is unreachable, so the caller gets 503, not the stale token.
    app = factories.app(acme, token_url="http://127.0.0.1:9/")
    conn = token_connection(app, expires_in=timedelta(seconds=5), access_token="at-almost-gone")
    response = api(conn.pk, acme_key)
    assert response.status_code == 503
    assert b"at-almost-gone" not in response.content


@pytest.mark.parametrize("pk", [0, 2**63 - 1, 2**63, 10**40])
def test_out_of_range_ids_are_404(api, acme_key, pk):
    assert_json_error(api(pk, acme_key), 404, "not_found")


@pytest.mark.parametrize("path", ["abc", "-1", "1.5", "%00", "1%20"])
def test_garbage_paths_are_not_500(client, acme_key, path):
    response = client.get(
        f"/api/v1/connections/{path}/token", HTTP_AUTHORIZATION=f"Bearer {acme_key}"
    )
    assert response.status_code == 404


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=st.one_of(
        st.text(),
        st.text(alphabet=st.characters(codec="latin-1")),
        st.builds(lambda s: "Bearer " + s, st.text()),
        st.builds(lambda h, s: f"Bearer pk_{h}_{s}", st.text("0123456789abcdef"), st.text()),
    ),
    header=st.sampled_from(["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"]),
)
def test_any_header_value_is_401_never_500(api, acme_conn, value, header):
    response = api(acme_conn.pk, **{header: value})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_key_is_usable_only_for_its_own_tenant(api, carol, globex, acme_conn, globex_conn):
    globex_key = apikeys.create(tenant=globex, name="g", actor=carol).plaintext
    assert api(globex_conn.pk, globex_key).status_code == 200
    assert api(acme_conn.pk, globex_key).status_code == 404


def test_expires_in_is_never_negative_and_null_without_expiry(
    token_connection, api, acme_app, acme_key
):
    conn = token_connection(acme_app, access_expires_at=None)
    body = api(conn.pk, acme_key).json()
    assert body["expires_at"] is None and body["expires_in"] is None


def test_a_disabled_apps_connection_is_409_not_a_provider_outage(
    token_connection, api, acme_app, acme_key
):
    conn = token_connection(acme_app)
    acme_app.status = acme_app.Status.DISABLED
    acme_app.save()
    assert_json_error(api(conn.pk, acme_key), 409, "app_disabled")
