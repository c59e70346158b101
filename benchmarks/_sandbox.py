"""The Django side of the benchmark scripts: run inside `manage.py shell -c` (refresh.py) or
in-process after django.setup() (soak.py), never by the portal or the tests.

Apps and connections are made with tests.factories, as the lifecycle tests make them.
"""

import json
import os
import statistics
import time
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Max, Q, Sum
from django.utils import timezone

from connections.models import (
    AuditEvent,
    Connection,
    PrivateApp,
)
from portal.models import Membership, Tenant
from sandbox import faults, registry
from sandbox.models import Client as SandboxClient
from sandbox.models import Token as SandboxToken
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


#: latency faults for the benchmark's apps: more calls than any run makes
LATENCY_CALLS = 2_000_000_000


def refresh_benchmark_setup() -> None:
    """refresh.py's setup step: BENCH_CONNECTIONS + BENCH_WARMUP connections on one app for
    the worker; with BENCH_BARE, as many on a second app whose refresh tokens the bare loop
    will spend; with BENCH_BURST, that many on a third app (one client id) for the burst,
    made before any rate limit is set on it (refresh_benchmark_burst sets it)."""
    scheduled = Connection.objects.refreshable().filter(next_refresh_at__isnull=False).count()
    if scheduled:
        # The beat's picker would claim them too (oldest due first), with tokens this run's
        # FIELD_ENCRYPTION_KEYS cannot decrypt, and every figure would be off.
        raise SystemExit(
            f"the database already holds {scheduled} connections with a next refresh (an "
            "earlier run's?): give the benchmark a fresh one (createdb, or a new SQLite file)"
        )
    n, warmup = int(os.environ["BENCH_CONNECTIONS"]), int(os.environ["BENCH_WARMUP"])
    bare_n = n + warmup if os.environ.get("BENCH_BARE") == "1" else 0
    burst_n = int(os.environ.get("BENCH_BURST", "0"))
    tenant, user = bench_tenant()
    worker_app, bare_app, burst_app = manu_app(tenant), manu_app(tenant), manu_app(tenant)
    bare_secret = bare_app.client_secrets.get().value
    sandbox_user = registry.create_user(
        provider=PROVIDER,
        username=f"bench-{uuid.uuid4().hex[:8]}",
        password="-",
        accounts=[ACCOUNT],
    )
    worker = [connect(worker_app, user, sandbox_user).pk for _ in range(n + warmup)]
    bare = [connect(bare_app, user, sandbox_user) for _ in range(bare_n)]
    burst = [connect(burst_app, user, sandbox_user).pk for _ in range(burst_n)]
    emit(
        {
            "worker_client_id": worker_app.client_id,
            "worker_app_id": worker_app.pk,
            "warmup_pks": worker[:warmup],
            "timed_pks": worker[warmup:],
            "token_url": bare_app.token_url,
            "bare_client_id": bare_app.client_id,
            "bare_secret": bare_secret,
            "bare_refresh_tokens": [c.refresh_token for c in bare],
            "burst_client_id": burst_app.client_id,
            "burst_app_id": burst_app.pk,
            "burst_pks": burst,
            "client_ids": [app.client_id for app in (worker_app, bare_app, burst_app)],
            "database": connection.vendor,
            "max_connections": _max_connections(),
            "task_size": settings.REFRESH_TASK_SIZE,  # as the worker reads it: same env
        }
    )


def refresh_benchmark_latency() -> None:
    """refresh.py's step before each comparison: every refresh of BENCH_CLIENT_IDS (the
    worker's, the bare loop's and the burst's apps) waits BENCH_LATENCY_MS at the provider
    from now on, as over a WAN (0: answered at once)."""
    latency_ms = int(os.environ["BENCH_LATENCY_MS"])
    for client_id in json.loads(os.environ["BENCH_CLIENT_IDS"]):
        faults.clear(provider=PROVIDER, client_id=client_id, kind="latency")
        if latency_ms:
            faults.inject(
                provider=PROVIDER,
                client_id=client_id,
                kind="latency",
                count=LATENCY_CALLS,
                latency_ms=latency_ms,
            )
    emit({"latency_ms": latency_ms})


def _max_connections() -> int | None:
    """PostgreSQL's max_connections (None elsewhere): the worker's threads or processes and
    the web threads each keep a connection (CONN_MAX_AGE)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def _db_sessions() -> int | None:
    """PostgreSQL's count of sessions opened on this database so far (None elsewhere): a
    worker that keeps its connections (CONN_MAX_AGE) opens a handful per run, one that closes
    them around every task one per refresh."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def _sessions_since(before: int | None) -> int | None:
    if before is None:
        return None
    time.sleep(1.0)  # ended sessions are counted when their backend reports its statistics
    return _db_sessions() - before


def _use_bench_queue():
    """A queue of this run's own: a shared Redis may have other workers on the default queue."""
    from portal.celery import app as celery_app

    celery_app.conf.task_default_queue = os.environ["BENCH_QUEUE"]
    return celery_app


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def refresh_benchmark_sustained() -> None:
    """refresh.py's sustained step, for BENCH_SECONDS: at once and then every
    REFRESH_BEAT_SECONDS (as beat does) every idle connection of the app BENCH_APP_ID (not
    queued, not leased, not already due) is made due (next_refresh_at = now, one UPDATE) and
    enqueue_due_refreshes() is called, which claims at most REFRESH_BATCH_SIZE of them.

    The rate counts the app's "refreshed" audit events created within the window; each one's
    lag runs from the moment its connection was last made due before it. After the window,
    the refreshes already queued are waited for (bounded by BENCH_TIMEOUT) and counted apart,
    and those still due but never claimed get a next refresh an hour ahead."""
    from connections.tasks import enqueue_due_refreshes

    celery_app = _use_bench_queue()
    app_id, seconds = int(os.environ["BENCH_APP_ID"]), float(os.environ["BENCH_SECONDS"])
    beat = settings.REFRESH_BEAT_SECONDS
    pool = Connection.objects.filter(app_id=app_id)
    count_before = pool.aggregate(total=Sum("refresh_count"))["total"] or 0
    sessions = _db_sessions()
    marks: dict[int, list] = {}
    ticks = enqueued = 0
    wall_start, started = timezone.now(), time.monotonic()
    next_tick = started
    while time.monotonic() < started + seconds:
        if time.monotonic() >= next_tick:
            now = timezone.now()
            idle = pool.filter(
                status__in=Connection.REFRESHABLE,
                refresh_enqueued_at__isnull=True,
                lease_owner="",
                next_refresh_at__gt=now,
            )
            pks = list(idle.values_list("pk", flat=True))
            idle.filter(pk__in=pks).update(next_refresh_at=now)
            for pk in pks:
                marks.setdefault(pk, []).append(now)
            enqueued += enqueue_due_refreshes()
            ticks += 1
            next_tick += beat
        time.sleep(0.05)
    wall_end, window = timezone.now(), time.monotonic() - started
    refreshed = AuditEvent.objects.filter(
        app_id=app_id, kind=AuditEvent.Kind.REFRESHED, created_at__gte=wall_start
    )
    in_window = list(
        refreshed.filter(created_at__lte=wall_end).values_list("connection_id", "created_at")
    )
    lags = []
    for pk, at in in_window:
        before = [due for due in marks.get(pk, ()) if due <= at]
        if before:
            lags.append((at - before[-1]).total_seconds())

    # The tail: what was queued or under way when the window closed.
    deadline = time.monotonic() + float(os.environ["BENCH_TIMEOUT"])
    busy = pool.filter(Q(refresh_enqueued_at__isnull=False) | ~Q(lease_owner=""))
    while busy.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    tail_seconds = time.monotonic() - started - window
    # Made due but never claimed (the batch was full): back to a later refresh, so the next
    # phase's picker does not take them too.
    parked = pool.filter(
        next_refresh_at__lte=timezone.now(), refresh_enqueued_at__isnull=True, lease_owner=""
    ).update(next_refresh_at=timezone.now() + timezone.timedelta(hours=1))
    emit(
        {
            "seconds": window,
            "beat_seconds": beat,
            "batch_size": settings.REFRESH_BATCH_SIZE,
            "pool": pool.count(),
            "ticks": ticks,
            "enqueued": enqueued,
            "refreshed": len(in_window),
            "lag_p50": _quantile(lags, 0.5),
            "lag_p99": _quantile(lags, 0.99),
            "lag_max": max(lags, default=None),
            "lags": len(lags),
            "tail": refreshed.filter(created_at__gt=wall_end).count(),
            "tail_seconds": tail_seconds,
            "still_busy": busy.count(),
            "parked": parked,
            "db_sessions": _sessions_since(sessions),
            "refresh_count_delta": (pool.aggregate(total=Sum("refresh_count"))["total"] or 0)
            - count_before,
            "not_active": pool.exclude(status=Connection.Status.ACTIVE).count(),
            "bad_events": AuditEvent.objects.filter(
                app_id=app_id, kind__in=BAD_EVENTS, created_at__gte=wall_start
            ).count(),
            "broker": celery_app.conf.broker_url.split("://", 1)[0],
        }
    )


def refresh_benchmark_burst() -> None:
    """refresh.py's burst step: set the token-endpoint rate limit BENCH_LIMIT per BENCH_WINDOW
    seconds on the sandbox client of BENCH_APP_ID and on the app (its token_rate_limit, as
    tests.factories.sandbox_app does), make all its connections due at once, then call
    enqueue_due_refreshes() at once and every REFRESH_BEAT_SECONDS until each has been
    refreshed (bounded by BENCH_TIMEOUT).

    The drain runs from just before the first enqueue to the newest last_refreshed_at. The
    sandbox keeps no record of its answers, so its refusals are counted as the refresh calls
    that reached it (TokenRequest rows) less the access tokens it issued meanwhile; the portal's
    side is its "refresh failed" events, told apart by their message: an HTTP 429, or held
    back by the portal's own limiter (never sent)."""
    from connections.tasks import enqueue_due_refreshes

    _use_bench_queue()
    app_id, client_id = int(os.environ["BENCH_APP_ID"]), os.environ["BENCH_CLIENT_ID"]
    limit, window = int(os.environ["BENCH_LIMIT"]), int(os.environ["BENCH_WINDOW"])
    PrivateApp.objects.filter(pk=app_id).update(token_rate_limit=limit, token_rate_window=window)
    client = SandboxClient.objects.filter(provider=PROVIDER, client_id=client_id)
    client.update(rate_limit=limit, rate_window=window, window_started_at=None, window_count=0)
    burst = Connection.objects.filter(app_id=app_id)
    n = burst.count()
    calls_before = registry.token_request_count(PROVIDER, client_id, grant_type="refresh_token")
    burst.update(next_refresh_at=timezone.now() - timezone.timedelta(seconds=1))

    beat = settings.REFRESH_BEAT_SECONDS
    wall_start, started = timezone.now(), time.monotonic()
    deadline = started + float(os.environ["BENCH_TIMEOUT"])
    refreshed = burst.filter(last_refreshed_at__gte=wall_start)
    next_tick, ticks, enqueued, done = started, 0, 0, 0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_tick:
            enqueued += enqueue_due_refreshes()
            ticks += 1
            next_tick += beat
        done = refreshed.count()
        if done == n:
            break
        time.sleep(0.1)
    last = refreshed.aggregate(last=Max("last_refreshed_at"))["last"]
    failed = AuditEvent.objects.filter(
        app_id=app_id, kind=AuditEvent.Kind.REFRESH_FAILED, created_at__gte=wall_start
    )
    emit(
        {
            "connections": n,
            "refreshed": done,
            "drain_seconds": (last - wall_start).total_seconds() if last else None,
            "polled_seconds": time.monotonic() - started,
            "ticks": ticks,
            "enqueued": enqueued,
            "beat_seconds": beat,
            "batch_size": settings.REFRESH_BATCH_SIZE,
            "provider_calls": registry.token_request_count(
                PROVIDER, client_id, grant_type="refresh_token"
            )
            - calls_before,
            "issued": SandboxToken.objects.filter(
                client__provider=PROVIDER,
                client__client_id=client_id,
                kind=SandboxToken.Kind.ACCESS,
                created_at__gte=wall_start,
            ).count(),
            "portal_429": failed.filter(message__contains="HTTP 429").count(),
            "held_back": failed.filter(message__contains="not sent").count(),
            "failed_events": failed.count(),
            "not_active": burst.exclude(status=Connection.Status.ACTIVE).count(),
            "reauth_events": AuditEvent.objects.filter(
                app_id=app_id, kind=AuditEvent.Kind.REAUTH_NEEDED, created_at__gte=wall_start
            ).count(),
        }
    )


def refresh_benchmark_round() -> None:
    """refresh.py's timed step: make BENCH_PKS due, run the beat picker once, and poll the
    database until each of them has been refreshed once more (bounded by BENCH_TIMEOUT).

    Times are wall-clock from just before enqueue_due_refreshes() (so the claims and the
    publishing are inside the figure) to the poll that counted every one of them refreshed
    since (a COUNT on last_refreshed_at)."""
    from connections.tasks import enqueue_due_refreshes

    celery_app = _use_bench_queue()
    pks = json.loads(os.environ["BENCH_PKS"])
    client_id = os.environ["BENCH_CLIENT_ID"]
    connections = Connection.objects.filter(pk__in=pks)
    calls_before = registry.token_request_count(PROVIDER, client_id, grant_type="refresh_token")
    connections.update(next_refresh_at=timezone.now() - timezone.timedelta(seconds=1))

    sessions = _db_sessions()
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
            "db_sessions": _sessions_since(sessions),
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


def _sql(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _plan_summary(plan: dict) -> dict:
    """The nodes of an EXPLAIN (FORMAT JSON) plan, outermost first ("Limit > LockRows > Index
    Scan using conn_due_idx"), and the rows its filters removed, summed over the nodes."""
    nodes, removed, stack = [], 0, [plan]
    while stack:
        node = stack.pop(0)
        name = node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
        nodes.append(name)
        removed += int(node.get("Rows Removed by Filter", 0))
        removed += int(node.get("Rows Removed by Index Recheck", 0))
        stack.extend(node.get("Plans", ()))
    return {"nodes": " > ".join(nodes), "removed": removed}


def _measure_claim(runs: int) -> dict:
    """The beat's claim as the picker runs it (connections_claim_due, REFRESH_BATCH_SIZE),
    each run inside a transaction rolled back, so nothing is marked: the median wall time of
    `runs` calls, and of its scan (its first SELECT, as captured), the median Execution Time
    EXPLAIN ANALYZE reports over `runs` runs, with the last run's plan."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from connections.lifecycle import connections_claim_due

    limit = settings.REFRESH_BATCH_SIZE
    walls, claimed = [], 0
    for i in range(runs + 1):  # the first warms the caches and captures the statements
        with transaction.atomic():
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                claimed = len(connections_claim_due(now=timezone.now(), limit=limit))
                took = time.perf_counter() - began
            transaction.set_rollback(True)
        if i == 0:
            statements = [
                q["sql"]
                for q in captured.captured_queries
                if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))
            ]
        else:
            walls.append(took * 1000)
    if not statements:
        raise SystemExit("the claim ran no SELECT to explain")
    executions, plan = [], {}
    for _ in range(runs):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statements[0])
                found = cursor.fetchone()[0]
            transaction.set_rollback(True)  # a FOR UPDATE took row locks
        found = json.loads(found) if isinstance(found, str) else found
        plan = found[0]
        executions.append(plan["Execution Time"])
    top = plan["Plan"]
    return {
        "claim_ms": statistics.median(walls),
        "scan_ms": statistics.median(executions),
        "scan_max_ms": max(executions),
        "claimed": claimed,
        "statements": len(statements),
        "buffers": int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0)),
        **_plan_summary(top),
    }


def refresh_benchmark_scan() -> None:
    """refresh.py's due-scan step (PostgreSQL): grow the tenant BENCH_SCAN_TENANT (seeded by
    `manage.py synthetic_connections`) by copying its rows with INSERT ... SELECT until the
    database holds BENCH_SCAN_ROWS connections, give its refreshable ones a next refresh a
    day ahead (never due during the run), VACUUM ANALYZE, and time the beat's claim
    (_measure_claim); then queue a backlog of BENCH_SCAN_BACKLOG of them (due within the last
    10 minutes, refresh_enqueued_at now: the picker must step over them), VACUUM ANALYZE, and
    time it again. Afterwards the synthetic rows get their null next refresh back (synthetic
    connections are never refreshed)."""
    tenant = Tenant.objects.get(slug=os.environ["BENCH_SCAN_TENANT"])
    rows, backlog = int(os.environ["BENCH_SCAN_ROWS"]), int(os.environ["BENCH_SCAN_BACKLOG"])
    runs = int(os.environ.get("BENCH_SCAN_RUNS", "20"))
    table = connection.ops.quote_name(Connection._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(f.column)
        for f in Connection._meta.concrete_fields
        if not f.primary_key
    )
    refreshable = [str(s) for s in Connection.REFRESHABLE]
    mine = Connection.objects.filter(tenant=tenant)
    have, began = mine.count(), time.monotonic()
    others = Connection.objects.count() - have  # the run's own, or a reused database's
    while have + others < rows:
        take = min(have, rows - others - have)
        # Identifiers from the model's own metadata, values as parameters.
        _sql(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table} "  # noqa: S608
            "WHERE tenant_id = %s ORDER BY id LIMIT %s",
            [tenant.pk, take],
        )
        have += take
    _sql(
        f"UPDATE {table} SET refresh_enqueued_at = NULL, "  # noqa: S608
        "next_refresh_at = now() + interval '1 day' + (id %% 1800) * interval '1 second' "
        "WHERE tenant_id = %s AND status = ANY(%s)",
        [tenant.pk, refreshable],
    )
    _sql(f"VACUUM ANALYZE {table}")
    grow_seconds = time.monotonic() - began
    try:
        without = _measure_claim(runs)
        _sql(
            f"UPDATE {table} SET refresh_enqueued_at = now(), "  # noqa: S608
            "next_refresh_at = now() - (id %% 600) * interval '1 second' "
            f"WHERE id IN (SELECT id FROM {table} WHERE tenant_id = %s AND status = ANY(%s) "
            "ORDER BY id LIMIT %s)",
            [tenant.pk, refreshable, backlog],
        )
        _sql(f"VACUUM ANALYZE {table}")
        queued = mine.filter(refresh_enqueued_at__isnull=False).count()
        with_backlog = _measure_claim(runs)
    finally:
        mine.filter(next_refresh_at__isnull=False).update(
            next_refresh_at=None, refresh_enqueued_at=None
        )
    emit(
        {
            "rows": Connection.objects.count(),
            "tenant_rows": have,
            "grow_seconds": grow_seconds,
            "queued": queued,
            "runs": runs,
            "batch_size": settings.REFRESH_BATCH_SIZE,
            "without": without,
            "with": with_backlog,
        }
    )
