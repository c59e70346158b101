"""The Test button: one authenticated GET at the provider's test endpoint with a valid token."""

import json

from connections import flow, lifecycle, oauth
from connections.lifecycle import TokenUnavailable
from connections.models import Connection

# A person is waiting on the page: a refresh in flight is waited for this long at most.
TEST_WAIT_SECONDS = 10.0
# The most of a test endpoint's answer the page shows.
EXCERPT_CHARS = 2000


def _test_once(conn: Connection) -> tuple[Connection, object]:
    conn = lifecycle.connection_token(
        conn.pk, tenant_id=conn.tenant_id, wait_seconds=TEST_WAIT_SECONDS
    )
    return conn, flow.call_test_endpoint(conn)


def excerpt(text: str) -> str:
    """What the page shows of an answer: capped (the template escapes it)."""
    if len(text) <= EXCERPT_CHARS:
        return text
    return f"{text[:EXCERPT_CHARS]}\n… ({len(text) - EXCERPT_CHARS} more characters not shown)"


def run_test(conn: Connection) -> dict:
    """Call the test endpoint with a valid token; a 401 means the provider dropped the token
    before its expiry (revoked, scopes widened), so refresh once and try again."""
    try:
        conn, response = _test_once(conn)
        if response.status_code == 401:
            lifecycle.connection_refresh(conn.pk, reason="manual", force=True)
            conn, response = _test_once(conn)
    except TokenUnavailable as exc:
        return {"ok": False, "status": None, "body": f"No valid token ({exc.reason}): {exc}"}
    except oauth.ProviderError as exc:
        return {"ok": False, "status": None, "body": exc.describe()}
    data = oauth.safe_json(response)
    return {
        "ok": response.status_code < 400,
        "status": response.status_code,
        "body": excerpt(json.dumps(data, indent=2, sort_keys=True)),
        "request_id": oauth.request_id_of(conn.app, response),
    }


def summary(result: dict) -> str:
    """The audit trail's line for a test."""
    if result["status"]:
        return f"Test call answered HTTP {result['status']}."
    return f"Test call not answered: {result['body']}"
