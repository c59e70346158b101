"""The Django side of the benchmark scripts: run inside `manage.py shell -c` (refresh.py) or
in-process after django.setup() (soak.py), never by the portal or the tests.

Connections are made as tests/lifecycle/conftest.py makes them: the sandbox mints a code as
if the user had pressed Grant, and the portal exchanges it over real HTTP with
obtain_from_code, so every token was issued by the sandbox and is known to it.
"""

import json
import os
import secrets
import time
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from connections.lifecycle.obtain import obtain_from_code
from connections.models import (
    AuditEvent,
    AuthorizationAttempt,
    ClientSecret,
    Connection,
    PrivateApp,
)
from connections.providers import get_provider
from portal.models import Membership, Tenant
from sandbox import registry
from sandbox.grants import new_code
from sandbox.models import Client
from sandbox.profiles import get_profile, urls_for

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


def manu_app(tenant, **client_kwargs) -> tuple[PrivateApp, str]:
    """An enabled Manu Online app pointing at the sandbox on PORTAL_BASE_URL, its sandbox
    client registered with client_kwargs (access_lifetime=…); the app and its secret."""
    base = settings.PORTAL_BASE_URL
    catalogue = get_provider(PROVIDER)
    client_id, secret = f"bench-{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(24)
    callback = f"{base}/oauth/callback/"
    scopes = list(catalogue.default_scopes or catalogue.known_scopes[:1])
    app = PrivateApp.objects.create(
        tenant=tenant,
        name=f"{catalogue.name} {client_id}",
        provider=PROVIDER,
        status=PrivateApp.Status.ENABLED,
        grant_type=catalogue.grants[0],
        client_id=client_id,
        client_auth=catalogue.client_auth,
        redirect_uris=[callback],
        scopes=scopes,
        **urls_for(PROVIDER, base),
    )
    ClientSecret.objects.create(app=app, value=secret, last_four=secret[-4:], is_primary=True)
    registry.register_client(
        provider=PROVIDER,
        client_id=client_id,
        secrets=[secret],
        redirect_uris=[callback],
        scopes=scopes,
        **client_kwargs,
    )
    return app, secret


def connect(app: PrivateApp, user, sandbox_user=None, account: dict = ACCOUNT) -> Connection:
    """A sandbox user grants app access (a minted code); the portal exchanges the code over
    HTTP at the sandbox token endpoint."""
    if sandbox_user is None:
        sandbox_user = registry.create_user(
            provider=app.provider,
            username=f"user-{uuid.uuid4().hex[:8]}",
            password=secrets.token_urlsafe(12),
            accounts=[account],
        )
    profile = get_profile(app.provider)
    code = new_code(
        profile,
        Client.objects.get(provider=profile.key, client_id=app.client_id),
        user=sandbox_user,
        redirect_uri=app.redirect_uris[0],
        scopes=app.scopes,
        account_id=account["id"],
        account_name=account["name"],
    )
    attempt = AuthorizationAttempt.objects.create(
        tenant=app.tenant,
        app=app,
        user=user,
        state_hash=uuid.uuid4().hex,
        redirect_uri=app.redirect_uris[0],
        scopes=app.scopes,
        expires_at=timezone.now() + timezone.timedelta(minutes=10),
    )
    return obtain_from_code(attempt=attempt, code=code)


def refresh_benchmark_setup() -> None:
    """refresh.py's setup step: BENCH_CONNECTIONS + BENCH_WARMUP connections on one app for
    the worker, as many on a second app whose refresh tokens the bare loop will spend."""
    n, warmup = int(os.environ["BENCH_CONNECTIONS"]), int(os.environ["BENCH_WARMUP"])
    tenant, user = bench_tenant()
    worker_app, _ = manu_app(tenant)
    bare_app, bare_secret = manu_app(tenant)
    sandbox_user = registry.create_user(
        provider=PROVIDER,
        username=f"bench-{uuid.uuid4().hex[:8]}",
        password="-",
        accounts=[ACCOUNT],
    )
    worker = [connect(worker_app, user, sandbox_user).pk for _ in range(n + warmup)]
    bare = [connect(bare_app, user, sandbox_user) for _ in range(n + warmup)]
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
    publishing are inside the figure) to the poll that saw the last refresh_count grow."""
    from connections.tasks import enqueue_due_refreshes
    from portal.celery import app as celery_app

    # A queue of this run's own: a shared Redis may have other workers on the default queue.
    celery_app.conf.task_default_queue = os.environ["BENCH_QUEUE"]
    pks = json.loads(os.environ["BENCH_PKS"])
    client_id = os.environ["BENCH_CLIENT_ID"]
    connections = Connection.objects.filter(pk__in=pks)
    before = dict(connections.values_list("pk", "refresh_count"))
    calls_before = registry.token_request_count(PROVIDER, client_id, grant_type="refresh_token")
    connections.update(next_refresh_at=timezone.now() - timezone.timedelta(seconds=1))

    started = time.monotonic()
    enqueued = enqueue_due_refreshes()
    enqueue_seconds = time.monotonic() - started
    deadline = started + float(os.environ["BENCH_TIMEOUT"])
    done = 0
    while time.monotonic() < deadline:
        done = sum(
            1 for pk, count in connections.values_list("pk", "refresh_count") if count > before[pk]
        )
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
