"""The Django side of the benchmark scripts: run inside `manage.py shell -c` (refresh.py) or
in-process after django.setup() (soak.py), never by the portal or the tests.

Apps and connections are made with tests.factories, as the lifecycle tests make them.
"""

import json
import os
import time
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from connections.models import (
    AuditEvent,
    Connection,
    PrivateApp,
)
from portal.models import Membership, Tenant
from sandbox import faults, registry
from tests import factories

PROVIDER = "manu_online"
ACCOUNT = {"id": "1001", "name": "Bench Oy"}
BAD_EVENTS = (AuditEvent.Kind.REAUTH_NEEDED, AuditEvent.Kind.REFRESH_FAILED)


def emit(payload: dict) -> None:
    """One machine-readable line for the script that ran this shell step."""
    print("BENCH" + json.dumps(payload), flush=True)


def bench_tenant():
    """A tenant of its own (a unique slug: a PostgreSQL database may be reused) and its admin."""
    tag = uuid.uuid4().hex[:8]
    tenant = Tenant.objects.create(name=f"Bench {tag}", slug=f"bench-{tag}")
    user = get_user_model().objects.create_user(username=f"bench-{tag}")
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.ADMIN)
    return tenant, user


def manu_app(tenant, **client_kwargs) -> PrivateApp:
    """An enabled Manu Online app on the sandbox at PORTAL_BASE_URL (client_kwargs go to the
    sandbox client: access_lifetime=…)."""
    return factories.sandbox_app(tenant, PROVIDER, settings.PORTAL_BASE_URL, sandbox=client_kwargs)


def connect(app: PrivateApp, user, sandbox_user=None, account: dict = ACCOUNT) -> Connection:
    return factories.minted_connection(app, user=user, sandbox_user=sandbox_user, account=account)


def refresh_benchmark_setup() -> None:
    """refresh.py's setup step: BENCH_CONNECTIONS + BENCH_WARMUP connections on one app for
    the worker, as many on a second app whose refresh tokens the bare loop will spend."""
    n, warmup = int(os.environ["BENCH_CONNECTIONS"]), int(os.environ["BENCH_WARMUP"])
    tenant, user = bench_tenant()
    worker_app, bare_app = manu_app(tenant), manu_app(tenant)
    bare_secret = bare_app.client_secrets.get().value
    sandbox_user = registry.create_user(
        provider=PROVIDER,
        username=f"bench-{uuid.uuid4().hex[:8]}",
        password="-",
        accounts=[ACCOUNT],
    )
    worker = [connect(worker_app, user, sandbox_user).pk for _ in range(n + warmup)]
    bare = [connect(bare_app, user, sandbox_user) for _ in range(n + warmup)]
    latency_ms = int(os.environ.get("BENCH_LATENCY_MS", "0"))
    if latency_ms:
        # Every refresh of both loops waits the same time at the provider, as over a WAN.
        for app in (worker_app, bare_app):
            faults.inject(
                provider=PROVIDER,
                client_id=app.client_id,
                kind="latency",
                count=n + warmup,
                latency_ms=latency_ms,
            )
    emit(
        {
            "worker_client_id": worker_app.client_id,
            "warmup_pks": worker[:warmup],
            "timed_pks": worker[warmup:],
            "token_url": bare_app.token_url,
            "bare_client_id": bare_app.client_id,
            "bare_secret": bare_secret,
            "bare_refresh_tokens": [c.refresh_token for c in bare],
        }
    )


def refresh_benchmark_round() -> None:
    """refresh.py's timed step: make BENCH_PKS due, run the beat picker once, and poll the
    database until each of them has been refreshed once more (bounded by BENCH_TIMEOUT).

    Times are wall-clock from just before enqueue_due_refreshes() (so the claims and the
    publishing are inside the figure) to the poll that counted every one of them refreshed
    since (a COUNT on last_refreshed_at)."""
    from connections.tasks import enqueue_due_refreshes
    from portal.celery import app as celery_app

    # A queue of this run's own: a shared Redis may have other workers on the default queue.
    celery_app.conf.task_default_queue = os.environ["BENCH_QUEUE"]
    pks = json.loads(os.environ["BENCH_PKS"])
    client_id = os.environ["BENCH_CLIENT_ID"]
    connections = Connection.objects.filter(pk__in=pks)
    calls_before = registry.token_request_count(PROVIDER, client_id, grant_type="refresh_token")
    connections.update(next_refresh_at=timezone.now() - timezone.timedelta(seconds=1))

    wall_start, started = timezone.now(), time.monotonic()
    enqueued = enqueue_due_refreshes()
    enqueue_seconds = time.monotonic() - started
    deadline = started + float(os.environ["BENCH_TIMEOUT"])
    # One COUNT per poll keeps the poller's own CPU, taken from the same cores, small.
    refreshed = connections.filter(last_refreshed_at__gte=wall_start)
    done = 0
    while time.monotonic() < deadline:
        done = refreshed.count()
        if done == len(pks):
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - started

    emit(
        {
            "enqueued": enqueued,
            "enqueue_seconds": enqueue_seconds,
            "refreshed": done,
            "seconds": elapsed,
            "provider_calls": registry.token_request_count(
                PROVIDER, client_id, grant_type="refresh_token"
            )
            - calls_before,
            "not_active": connections.exclude(status=Connection.Status.ACTIVE).count(),
            "bad_events": AuditEvent.objects.filter(
                connection__in=pks, kind__in=BAD_EVENTS
            ).count(),
            "batch_size": settings.REFRESH_BATCH_SIZE,
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "broker": celery_app.conf.broker_url.split("://", 1)[0],
        }
    )
