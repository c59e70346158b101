"""Webhook relay end to end: a provider's signed webhooks posted to an app's inbound URL, heard
at the tenant's listener, with what the portal adds to each (run on demand; not a test).

    .venv/bin/python benchmarks/webhooks.py [--count 300] [--concurrency 8] [--sync]
        [--worker-threads 8] [--tenant-in-flight N] [--sweep-seconds S]
        [--redis redis://127.0.0.1:6379/7 [--database-url postgres://…/bench_webhooks]]

What it does, all on 127.0.0.1, with its state in a temporary VAR_DIR removed afterwards:
1. migrates the database (a fresh SQLite file in VAR_DIR and the filesystem broker, as `make
   run`; with --redis, Redis as broker and cache, and --database-url may name a PostgreSQL
   database, created for the run and dropped afterwards);
2. starts a listener in this process: sandbox.listener (verifying with standardwebhooks,
   answering 200 at once), timed around its handler;
3. in this process (the ORM, the run's settings): a tenant and an enabled Manu Online sandbox
   app whose listener is that one (webhook_listener.configure, the default events; --sync:
   synchronous mode); the listener is given the signing secret configure returns;
4. starts the portal (gunicorn gthread, DEBUG off), the webhooks worker (`celery -A portal
   worker -Q webhooks --pool threads --concurrency 8`), and beat with a default-queue worker,
   which run the sweep (send_due_webhooks, every WEBHOOK_SWEEP_SECONDS) as in production;
5. warm-up: --concurrency webhooks posted and heard before the clock (worker start-up and the
   first database connections stay out of the figures);
6. timed: --count webhooks, each signed as Manu Online signs (sandbox.webhooks, a fresh
   delivery id and timestamp), POSTed from --concurrency threads (requests.post: a new TCP
   connection each, as a provider's would be), each carrying its sequence number; the
   listener notes when each arrives (request line and headers read) and when it has answered.

Figures, every one from this process's clock (time.perf_counter), the listener and the
posting threads being in the same process:
- deliveries per second: count / (first POST started -> last distinct delivery heard);
- the portal's added latency per delivery: heard at the listener - its inbound POST started,
  p50 / p99 / max;
- beside it, the listener's own handling (arrival -> answer written, standardwebhooks'
  verification included) and the inbound POST's own response time, p50 / p99;
- CPU seconds per delivery of each process group (from /proc), and the database's view
  afterwards: every delivery delivered, attempts, the inbound rows verified.
Exit code 0 when every webhook was heard once, verified, and delivered in the database.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from urllib.parse import urlparse

import requests
from _harness import (
    HOST,
    ROOT,
    Processes,
    celery_argv,
    environment,
    exit_on_sigterm,
    free_port,
    group_cpu_seconds,
    gunicorn_argv,
    log_tail,
    manage,
    scratch_dir,
    wait_ready,
)

MAX_COUNT, MAX_CONCURRENCY = 5000, 64
PROVIDER = "manu_online"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", "-n", type=int, default=300, help="timed inbound webhooks")
    parser.add_argument(
        "--concurrency", "-c", type=int, default=8, help="threads posting the inbound webhooks"
    )
    parser.add_argument("--sync", action="store_true", help="the app's synchronous mode")
    parser.add_argument(
        "--worker-threads", type=int, default=8, help="the webhooks worker's thread pool"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument(
        "--tenant-in-flight",
        type=int,
        help="WEBHOOK_TENANT_IN_FLIGHT for the run (default: the portal's, 2)",
    )
    parser.add_argument(
        "--sweep-seconds", type=float, help="WEBHOOK_SWEEP_SECONDS (default: the portal's, 5)"
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds for the timed phase")
    parser.add_argument(
        "--redis",
        default=os.environ.get("REDIS_URL", ""),
        help="a Redis database of this run's own for broker and cache, FLUSHed before and "
        "after (default: $REDIS_URL, else none: the filesystem broker)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="only with --redis: a PostgreSQL database to create and drop (default: $DATABASE_URL)",
    )
    return parser.parse_args()


# --- the listener, in this process ---------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """What the listener noted of one request: the webhook's sequence number and phase (from
    the relayed payload), when it arrived, how long the listener took to answer it."""

    seq: int | None
    phase: str | None
    at: float
    handling: float
    verified: bool
    status: int | None
    message_id: str | None


def start_listener():
    """sandbox.listener's Listener and handler, on a server with a deeper accept queue than
    http.server's 5 (a full queue drops connections, and the portal would measure the
    retransmit), each request timed from arrival to the last byte of the answer."""
    from sandbox.listener import Listener, _handler

    listener = Listener()
    heard: list[Heard] = []
    lock = threading.Lock()
    local = threading.local()
    record = listener.record

    def keep(received):
        local.received = received
        record(received)

    listener.record = keep

    class Timed(_handler(listener)):
        def do_POST(self):  # noqa: N802 - http.server's name
            arrived = time.perf_counter()
            local.received = None
            super().do_POST()
            handling = time.perf_counter() - arrived
            received = local.received
            try:
                payload = json.loads(received.body)["data"]["payload"]
            except (AttributeError, KeyError, TypeError, ValueError):
                payload = {}
            with lock:
                heard.append(
                    Heard(
                        seq=payload.get("seq"),
                        phase=payload.get("phase"),
                        at=arrived,
                        handling=handling,
                        verified=received.verified if received else False,
                        status=received.answered if received else None,
                        message_id=received.headers.get("webhook-id") if received else None,
                    )
                )

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    listener.server = Server((HOST, 0), Timed)
    threading.Thread(target=listener.server.serve_forever, daemon=True).start()
    return listener, heard, lock


# --- the portal side, through the ORM of this process -------------------------------------


def django_setup(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def make_app(listener_url: str, *, sync: bool) -> dict:
    from benchmarks._sandbox import bench_tenant, manu_app
    from connections import webhook_listener
    from connections.webhook_events import DEFAULT_EVENTS
    from connections.webhooks_inbound import inbound_url
    from sandbox.models import Client

    tenant, user = bench_tenant()
    app = manu_app(tenant)
    secret = webhook_listener.configure(
        app=app,
        actor=user,
        listener_url=listener_url,
        listener_sync=sync,
        listener_events=list(DEFAULT_EVENTS),
        lapse_warning_days=7,
    )
    app.refresh_from_db()
    client = Client.objects.get(provider=PROVIDER, client_id=app.client_id)
    return {
        "app": app.pk,
        "signing_secret": secret,
        "inbound_url": inbound_url(app),
        "provider_secret": client.webhook_secret,
    }


def database_facts(app_pk: int) -> dict:
    from django.conf import settings
    from django.db.models import Count, Max, Sum

    from connections.models import InboundDelivery, OutboundDelivery
    from connections.tasks import DRAIN_LIMIT

    out = OutboundDelivery.objects.filter(app_id=app_pk)
    by_status = dict(out.values_list("status").annotate(n=Count("id")).order_by())
    totals = out.aggregate(total=Sum("attempts"), most=Max("attempts"))
    return {
        "by_status": by_status,
        "attempts": totals["total"] or 0,
        "most_attempts": totals["most"] or 0,
        "inbound_verified": InboundDelivery.objects.filter(
            app_id=app_pk, result=InboundDelivery.Result.VERIFIED
        ).count(),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "in_flight": settings.WEBHOOK_TENANT_IN_FLIGHT,
        "sweep": settings.WEBHOOK_SWEEP_SECONDS,
        "drain_limit": DRAIN_LIMIT,
    }


def wait_delivered(app_pk: int, expected: int, timeout: float) -> dict:
    """The listener answers before the worker records the answer: poll the database."""
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        facts = database_facts(app_pk)
        if facts["by_status"].get("delivered", 0) >= expected or time.monotonic() > deadline:
            return facts
        time.sleep(0.1)


# --- posting as the provider ----------------------------------------------------------------


def post_all(setup: dict, seqs: list[int], phase: str, threads: int) -> tuple[float, dict]:
    """POST one signed webhook per seq from `threads` threads; (when the first started,
    {seq: (started, response seconds, status)})."""
    from sandbox.webhooks import signed_headers

    url, secret = setup["inbound_url"], setup["provider_secret"]
    results: dict[int, tuple[float, float, int]] = {}
    lock = threading.Lock()

    def one(seq: int) -> None:
        body = json.dumps({"event": "bench.ping", "seq": seq, "phase": phase}).encode()
        headers = signed_headers(PROVIDER, body, secret=secret)
        started = time.perf_counter()
        try:
            status = requests.post(url, data=body, headers=headers, timeout=30).status_code
        except requests.RequestException:
            status = 0
        took = time.perf_counter() - started
        with lock:
            results[seq] = (started, took, status)

    with ThreadPoolExecutor(threads) as pool:
        first = time.perf_counter()
        list(pool.map(one, seqs))
    return first, results


def wait_heard(heard: list, lock, phase: str, expected: int, timeout: float) -> dict:
    """{seq: the first Heard of it answered 2xx}, once all `expected` are heard or at the
    deadline (a bounded poll)."""
    deadline = time.monotonic() + timeout
    while True:
        with lock:
            firsts = {}
            for h in heard:
                if h.phase == phase and h.status and 200 <= h.status < 300:
                    firsts.setdefault(h.seq, h)
        if len(firsts) >= expected or time.monotonic() > deadline:
            return firsts
        time.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1] * 1000


def psql(url: str, sql: str) -> None:
    admin = urlparse(url)._replace(path="/postgres").geturl()
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)  # noqa: S603,S607


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --- the run --------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    args.count = max(1, min(args.count, MAX_COUNT))
    args.concurrency = max(1, min(args.concurrency, MAX_CONCURRENCY))
    args.worker_threads = max(1, min(args.worker_threads, MAX_CONCURRENCY))
    exit_on_sigterm()
    db = ""
    if args.redis and args.database_url:
        db = urlparse(args.database_url).path.lstrip("/")
        psql(args.database_url, f'DROP DATABASE IF EXISTS "{db}"')
        psql(args.database_url, f'CREATE DATABASE "{db}"')
    if args.redis:
        redis_flush(args.redis)
    try:
        with scratch_dir("portal-webhooks-bench-") as var_dir:
            return run(args, var_dir)
    finally:
        if db:
            # The portal's processes are stopped by now; this process's own connection goes.
            if "django" in sys.modules:
                from django.db import connections

                connections.close_all()
            psql(args.database_url, f'DROP DATABASE IF EXISTS "{db}"')
        if args.redis:
            redis_flush(args.redis)


def run(args, var_dir: str) -> int:
    port = free_port()
    base = f"http://{HOST}:{port}"
    overrides = {
        "SANDBOX_ENABLED": "true",  # the sandbox provider, and a loopback listener allowed
        "PORTAL_BASE_URL": base,
        "CELERY_BROKER_URL": "filesystem://",
    }
    if args.tenant_in_flight:
        overrides["WEBHOOK_TENANT_IN_FLIGHT"] = str(max(1, args.tenant_in_flight))
    if args.sweep_seconds:
        overrides["WEBHOOK_SWEEP_SECONDS"] = str(max(0.5, args.sweep_seconds))
    if args.redis:
        overrides.update(REDIS_URL=args.redis, CELERY_BROKER_URL=args.redis)
        if args.database_url:
            overrides["DATABASE_URL"] = args.database_url
    env = environment(var_dir, **overrides)
    manage(env, "migrate", "--noinput")
    django_setup(env)
    listener, heard, lock = start_listener()
    try:
        setup = make_app(listener.url, sync=args.sync)
        listener.secrets = [setup["signing_secret"]]
        with Processes(env, log_dir=var_dir) as procs:
            try:
                return measure(args, procs, base, port, setup, listener, heard, lock)
            except BaseException:
                for name in ("webhooks-worker.log", "worker.log", "beat.log", "web.log"):
                    print(log_tail(var_dir, name), file=sys.stderr)
                raise
    finally:
        listener.stop()


def measure(args, procs, base, port, setup, listener, heard, lock) -> int:
    n, c = args.count, args.concurrency
    server = procs.start(
        gunicorn_argv(port, workers=args.web_workers, threads=args.web_threads),
        log_name="web.log",
    )
    wait_ready(base, server)
    # As the Procfile runs them: the webhooks worker, and the default-queue worker that runs
    # the sweep beat sends (it has nothing else to do here: no connections are due).
    webhooks_worker = procs.start(
        celery_argv(
            "worker",
            "-Q",
            "webhooks",
            "--pool",
            "threads",
            "--concurrency",
            str(args.worker_threads),
            "-n",
            "webhooks@%h",
        ),
        log_name="webhooks-worker.log",
    )
    sweeper = procs.start(
        celery_argv("worker", "-Q", "celery", "--pool", "threads", "--concurrency", "2"),
        log_name="worker.log",
    )
    beat = procs.start(celery_argv("beat"), log_name="beat.log")

    _, warm_posts = post_all(setup, list(range(c)), "warm", c)
    warm = wait_heard(heard, lock, "warm", c, timeout=120)
    if len(warm) != c:
        codes = sorted({r[2] for r in warm_posts.values()})
        raise SystemExit(f"warm-up: {len(warm)} of {c} heard (inbound answers {codes})")

    groups = {
        "web": server,
        "webhooks worker": webhooks_worker,
        "sweep worker": sweeper,
        "beat": beat,
    }
    cpu_before = {k: group_cpu_seconds(p) for k, p in groups.items()}
    cpu_self = time.process_time()
    first, posts = post_all(setup, list(range(n)), "timed", c)
    got = wait_heard(heard, lock, "timed", n, timeout=args.timeout)
    cpu = {k: group_cpu_seconds(p) - cpu_before[k] for k, p in groups.items()}
    cpu["this process (posters, listener)"] = time.process_time() - cpu_self
    facts = wait_delivered(setup["app"], n + c, timeout=30)

    with lock:
        timed = [h for h in heard if h.phase == "timed"]
    last = max((h.at for h in got.values()), default=first)
    elapsed = last - first
    arrivals = sorted(h.at for h in got.values())
    pause = max((b - a for a, b in zip(arrivals, arrivals[1:], strict=False)), default=0.0)
    per_second = [0] * (int(max(elapsed, 0)) + 1)
    for at in arrivals:
        per_second[int(at - first)] += 1
    added = [got[s].at - posts[s][0] for s in got if s in posts]
    handling = [h.handling for h in timed]
    responses = [r[1] for r in posts.values()]
    by_code: dict[int, int] = {}
    for r in posts.values():
        by_code[r[2]] = by_code.get(r[2], 0) + 1
    duplicates = len(timed) - len({h.seq for h in timed})
    unverified = sum(1 for h in timed if not h.verified)
    ids = {h.message_id for h in timed}

    mode = "synchronous mode" if args.sync else "queued mode (after-commit queueing)"
    print(f"Webhook relay benchmark, {mode}: {n} inbound webhooks at concurrency {c}")
    print(
        f"  setup:    database {facts['database']}, broker "
        f"{'redis' if args.redis else 'filesystem'}, {os.cpu_count()} CPUs; gunicorn gthread "
        f"{args.web_workers} x {args.web_threads}, DEBUG off; webhooks worker: celery threads "
        f"pool x {args.worker_threads}; beat + the default-queue worker (threads x 2) run "
        f"the sweep every {facts['sweep']:g} s; WEBHOOK_TENANT_IN_FLIGHT={facts['in_flight']} (one tenant, one "
        f"app), DRAIN_LIMIT={facts['drain_limit']}"
    )
    print(
        "  listener: sandbox.listener in this process (ThreadingHTTPServer, verifies with "
        "standardwebhooks, answers 200 at once)"
    )
    print(
        f"  inbound:  {n} POSTs signed as Manu Online (sandbox.webhooks), requests.post from "
        f"{c} threads (a new connection each), after a warm-up of {c} heard before the clock"
    )
    print(
        f"  throughput: {len(got)} of {n} delivered in {elapsed:.2f} s (first POST started -> "
        f"last delivery heard) = {len(got) / elapsed if elapsed > 0 else 0:.1f} deliveries/s; "
        f"longest pause between two deliveries heard {pause * 1000:.0f} ms; inbound POSTs all "
        f"answered {max(r[0] + r[1] for r in posts.values()) - first:.2f} s after the first began"
    )
    print(
        "  deliveries heard in each second from the first POST: " + " ".join(map(str, per_second))
    )
    print(
        f"  portal's added latency (heard at listener - inbound POST started): p50 "
        f"{pct(added, 50):.0f} ms, p99 {pct(added, 99):.0f} ms, max {pct(added, 100):.0f} ms"
    )
    print(
        f"  listener's own handling (arrival -> answer written): p50 {pct(handling, 50):.1f} ms, "
        f"p99 {pct(handling, 99):.1f} ms"
    )
    print(
        f"  inbound POST response time: p50 {pct(responses, 50):.0f} ms, p99 "
        f"{pct(responses, 99):.0f} ms; answers "
        + ", ".join(f"{code} x {k}" for code, k in sorted(by_code.items()))
    )
    print(
        "  CPU per delivery (ms, from /proc): "
        + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in cpu.items())
    )
    delivered = facts["by_status"].get("delivered", 0)
    print(
        f"  database: outbound {facts['by_status']} (warm-up included), {facts['attempts']} "
        f"attempts (most {facts['most_attempts']} for one), {facts['inbound_verified']} inbound "
        f"verified; listener: {len(timed)} timed requests, {duplicates} duplicates, "
        f"{unverified} unverified, {len(ids)} webhook-ids"
    )
    exact = (
        len(got) == n
        and duplicates == 0
        and unverified == 0
        and delivered == n + c
        and all(200 <= code < 300 for code in by_code)
    )
    print("  checks: " + ("exact" if exact else "NOT exact"))
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
