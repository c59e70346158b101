"""Refreshes stay under the provider's token-endpoint limit per client id, and no slower."""

import time

import pytest

from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.models import AuditEvent, PrivateApp
from sandbox.models import Client
from tests.lifecycle.conftest import expire_access_token
from tests.lifecycle.test_rotation import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT, WINDOW, N = 10, 10, 30


def test_thirty_manus_refreshes_under_ten_per_ten_seconds_get_no_429(make_app, connect):
    app = make_app("manus")
    conns = [connect(app) for _ in range(N)]
    # Connected without a limit; now the provider enforces one and the app knows it.
    client = Client.objects.get(client_id=app.client_id)
    Client.objects.filter(pk=client.pk).update(
        rate_limit=LIMIT, rate_window=WINDOW, window_started_at=None, window_count=0
    )
    PrivateApp.objects.filter(pk=app.pk).update(token_rate_limit=LIMIT, token_rate_window=WINDOW)
    for conn in conns:
        expire_access_token(conn)

    started = time.monotonic()
    outcomes = run_concurrently(
        N, lambda i: refresh_connection(conns[i].pk, reason="manual", force=True)
    )
    elapsed = time.monotonic() - started

    assert outcomes == [Outcome.REFRESHED] * N
    assert not AuditEvent.objects.filter(app=app, kind="refresh_failed").exists()
    minimum = (N // LIMIT - 1) * WINDOW  # 10 now, 10 after one window, 10 after two
    print(f"{N} refreshes at {LIMIT}/{WINDOW}s took {elapsed:.2f}s (minimum {minimum}s)")
    assert minimum <= elapsed <= minimum * 1.1
