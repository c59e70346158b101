"""Whatever a sender posts to an inbound URL, the endpoint answers in JSON, never a 500."""

import json
import time
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections.models import OutboundDelivery
from connections.webhooks_inbound import inbound_path
from sandbox.webhooks import signature
from tests.support.webhooks import PRIMARY

pytestmark = pytest.mark.django_db

fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HEADER_NAMES = [
    "X-Manu-Signature",
    "X-Manu-Timestamp",
    "X-Manu-Webhook-Id",
    "X-Webhook-Signature",
    "Content-Type",
    "Content-Encoding",
    "X-Anything",
]
header_values = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", "0", "-1", "9" * 40, "sha256=", "zz", "\x00", str(int(time.time()))]),
)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.sampled_from([b"", b"{}", b"[" * 5000, b'{"account_id": "\\u0000"}', b'{"account_id": 1e999}']),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["account_id", "event", "x"]), inner, max_size=3),
        max_leaves=10,
    ).map(lambda v: __import__("json").dumps(v).encode()),
)


@pytest.fixture
def raw_client() -> Client:
    return Client(raise_request_exception=True)


def assert_json_answer(response) -> None:
    assert response.status_code in (200, 401, 405, 413), response.status_code
    assert response.json()["error" if response.status_code != 200 else "received"]


@fuzz
@given(body=bodies, headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values))
def test_no_body_or_headers_crash_the_endpoint(raw_client, manu_app, body, headers):
    content_type = headers.pop("Content-Type", "application/json")
    response = raw_client.post(
        inbound_path(manu_app), data=body, content_type=content_type, headers=headers
    )
    assert_json_answer(response)


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@fuzz
@given(body=bodies, delivery_id=header_values)
def test_correctly_signed_garbage_is_stored_and_relayed_not_crashed_on(
    raw_client, manu_app, listener, listen, body, delivery_id
):
    """Signed with the real secret, so the code past verification (JSON, attribution,
    storage, the relay to a listener) sees arbitrary bodies and ids too; what is relayed is
    strict JSON, whatever came in."""
    listen(manu_app, listener)
    stamp = str(int(time.time()))
    headers = {
        "X-Manu-Timestamp": stamp,
        "X-Manu-Webhook-Id": delivery_id,
        "X-Manu-Signature": signature(PRIMARY, body, timestamp=stamp, delivery_id=delivery_id),
    }
    response = raw_client.post(
        inbound_path(manu_app), data=body, content_type="application/json", headers=headers
    )
    assert_json_answer(response)
    for relay in OutboundDelivery.objects.filter(app=manu_app):
        assert strict_json(relay.body_text())["type"] == "webhook.received"


@fuzz
@given(token=st.text(max_size=200), method=st.sampled_from(["get", "put", "delete", "post"]))
def test_no_url_or_method_crashes_it(raw_client, manu_app, token, method):
    response = getattr(raw_client, method)(f"/webhooks/in/{quote(token, safe='')}/")
    assert response.status_code in (404, 405, 401, 301, 200), response.status_code


@pytest.mark.parametrize("declared", ["abc", "-5", "0", "1", "99999999999999", "9" * 30])
def test_no_content_length_crashes_it(raw_client, manu_app, declared):
    response = raw_client.post(
        inbound_path(manu_app), data=b"{}", content_type="application/json",
        CONTENT_LENGTH=declared,
    )
    assert_json_answer(response)
