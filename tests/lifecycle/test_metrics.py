"""Counters in /metrics move with real work: a refresh against the sandbox, a failure, a token
API answer (prometheus-client's multiprocess files, read back through the endpoint)."""

from prometheus_client.parser import text_string_to_metric_families

from connections.lifecycle import Outcome, connection_refresh
from sandbox import faults


def sample(client, name: str, **labels) -> float:
    text = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_refreshes_failures_latency_and_token_api_answers_are_counted(
    client, make_sandbox_app, mint_connection
):
    conn = mint_connection(make_sandbox_app("manus"))
    before = sample(client, "portal_refreshes_total", provider="manus", outcome="refreshed")
    observed = sample(client, "portal_refresh_duration_seconds_count", provider="manus")
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.REFRESHED
    after = sample(client, "portal_refreshes_total", provider="manus", outcome="refreshed")
    assert after == before + 1
    assert sample(client, "portal_refresh_duration_seconds_count", provider="manus") == observed + 1

    failed = sample(client, "portal_refresh_failures_total", provider="manus", reason="server")
    faults.inject(provider="manus", client_id=conn.app.client_id, kind="error_5xx", status=503)
    assert connection_refresh(conn.pk, reason="manual", force=True) == Outcome.RETRY_SCHEDULED
    assert (
        sample(client, "portal_refresh_failures_total", provider="manus", reason="server")
        == failed + 1
    )

    refused = sample(client, "portal_token_api_requests_total", status="401")
    client.get(f"/api/v1/connections/{conn.pk}/token", HTTP_AUTHORIZATION="Bearer nope")
    assert sample(client, "portal_token_api_requests_total", status="401") == refused + 1
