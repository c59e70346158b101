"""Refreshes per second end to end through a real Celery worker, beside a bare loop of the same
token-endpoint calls (run on demand; not a test).

    .venv/bin/python benchmarks/refresh.py [--connections 200] [--concurrency 4]
        [--provider-latency-ms 100] [--redis redis://127.0.0.1:6379/0 [--database-url …]]

What it does, all on 127.0.0.1, with its state in a temporary VAR_DIR removed afterwards:
1. migrates the database (a fresh SQLite file in VAR_DIR; with --redis, DATABASE_URL or
   --database-url may name a PostgreSQL database instead: use a throwaway one);
2. starts the portal (gunicorn gthread) with the sandbox on, PORTAL_BASE_URL its own URL;
3. `manage.py shell` makes 2 x (N + warm-up) Manu Online connections, as the tests do: a code
   minted by the sandbox, exchanged by the portal over HTTP (obtain_from_code);
4. starts `celery -A portal worker --concurrency C` (broker: kombu's filesystem transport in
   VAR_DIR, or Redis with --redis, on a queue of this run's own);
5. warm-up: C connections made due, `enqueue_due_refreshes`, waited for (worker start-up and
   first DB connections stay out of the figure);
6. timed: the N other connections made due, then in one `manage.py shell` step: the clock
   starts, `enqueue_due_refreshes` claims and enqueues them, and the database is polled every
   20 ms (one COUNT) until each has a new last_refreshed_at: N / elapsed = refreshes per second;
7. bare loop: N refresh-grant POSTs straight to the sandbox token endpoint from C threads,
   each spending a refresh token of the second app, built like the portal's own request
   (form body, client secret in it, a plain requests.post: no keep-alive, as the portal).

Fairness: both sides hit the same server and database, with the same concurrency (C worker
processes vs C client threads), one new TCP connection per call, after a warm-up of C calls.
What the portal adds is its own work per refresh: the claim and enqueue, the broker round
trip, the lease, the rate limiter, storing the tokens, the audit event.

It also prints the CPU each side spent per refresh (from /proc). With the provider on the
same cores and answering at once, both loops are CPU-bound and the ratio is about the ratio of
their CPU costs: a Celery task with a Django ORM refresh costs more than the sandbox's own
handling of the call. --provider-latency-ms makes the sandbox wait in every refresh of both
loops, as a provider across a network does: then the ratio shows what the portal adds to
each refresh's wall time.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from _harness import (
    HOST,
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

TARGET_RATIO = 0.8
MAX_CONNECTIONS, MAX_CONCURRENCY = 5000, 64
SETUP = "from benchmarks._sandbox import refresh_benchmark_setup; refresh_benchmark_setup()"
ROUND = "from benchmarks._sandbox import refresh_benchmark_round; refresh_benchmark_round()"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", "-n", type=int, default=200)
    parser.add_argument("--concurrency", "-c", type=int, default=4, help="worker processes")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--provider-latency-ms",
        type=int,
        default=0,
        help="the sandbox sleeps this long in every refresh of both loops (a remote provider)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per timed phase")
    parser.add_argument(
        "--redis",
        default=os.environ.get("REDIS_URL", ""),
        help="Redis URL for the broker, cache and rate limiter (default: $REDIS_URL, else none)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="only with --redis: a throwaway database, e.g. PostgreSQL (default: $DATABASE_URL)",
    )
    return parser.parse_args()


def shell_step(env: dict, code: str, timeout: float, **extra: str) -> dict:
    out = manage({**env, **extra}, "shell", "-c", code, timeout=timeout)
    return json.loads(out.split("BENCH", 1)[1])


def worker_round(env: dict, pks: list[int], *, client_id: str, queue: str, timeout: float):
    return shell_step(
        env,
        ROUND,
        timeout + 120,
        BENCH_PKS=json.dumps(pks),
        BENCH_CLIENT_ID=client_id,
        BENCH_QUEUE=queue,
        BENCH_TIMEOUT=str(timeout),
    )


class CpuMeter:
    """CPU seconds spent by each named process group (None: this process, the bare loop's
    client threads) between construction and read()."""

    def __init__(self, **groups: subprocess.Popen | None):
        self.groups = groups
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {
            name: group_cpu_seconds(proc) if proc else time.process_time()
            for name, proc in self.groups.items()
        }

    def read(self) -> dict[str, float]:
        return {name: value - self.start[name] for name, value in self._now().items()}


def bare_loop(token_url: str, client_id: str, secret: str, tokens: list[str], threads: int):
    """POST each refresh token once from a pool of threads; (seconds, 200s, failures)."""
    failures: list[str] = []
    lock = threading.Lock()

    def one(refresh_token: str) -> bool:
        response = requests.post(
            token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": secret,
            },
            headers={"Accept": "application/json"},
            timeout=(5, 15),  # the portal's default connect and read timeouts
        )
        ok = response.status_code == 200 and bool(response.json().get("refresh_token"))
        if not ok:
            with lock:
                failures.append(f"{response.status_code} {response.text[:200]}")
        return ok

    with ThreadPoolExecutor(threads) as pool:
        started = time.monotonic()
        ok = sum(pool.map(one, tokens))
        return time.monotonic() - started, ok, failures


def main() -> int:
    args = parse_args()
    n = max(1, min(args.connections, MAX_CONNECTIONS))
    concurrency = max(1, min(args.concurrency, MAX_CONCURRENCY))
    exit_on_sigterm()
    with scratch_dir("portal-refresh-bench-") as var_dir:
        port = free_port()
        base = f"http://{HOST}:{port}"
        overrides = {
            "SANDBOX_ENABLED": "true",
            "PORTAL_BASE_URL": base,
            "CELERY_BROKER_URL": "filesystem://",
            # One picker call takes every connection of the run (the default batch is 200).
            "REFRESH_BATCH_SIZE": str(max(200, n)),
        }
        if args.redis:
            overrides.update(REDIS_URL=args.redis, CELERY_BROKER_URL=args.redis)
            if args.database_url:
                overrides["DATABASE_URL"] = args.database_url
        env = environment(var_dir, **overrides)
        queue = f"bench-refresh-{uuid.uuid4().hex[:8]}"
        with Processes(env, log_dir=var_dir) as procs:
            try:
                return run(env, procs, base, port, n, concurrency, queue, args)
            except BaseException:
                print(log_tail(var_dir, "worker.log"), file=sys.stderr)
                raise


def run(env, procs, base, port, n, concurrency, queue, args) -> int:
    manage(env, "migrate", "--noinput")
    web_threads = max(4, concurrency)
    server = procs.start(
        gunicorn_argv(port, workers=args.web_workers, threads=web_threads), log_name="web.log"
    )
    wait_ready(base, server)
    started = time.monotonic()
    setup = shell_step(
        env,
        SETUP,
        60 + n,
        BENCH_CONNECTIONS=str(n),
        BENCH_WARMUP=str(concurrency),
        BENCH_LATENCY_MS=str(max(0, args.provider_latency_ms)),
    )
    setup_seconds = time.monotonic() - started
    worker = procs.start(
        celery_argv("worker", "--concurrency", str(concurrency), "--queues", queue),
        log_name="worker.log",
    )
    round_args = {"client_id": setup["worker_client_id"], "queue": queue}
    warm = worker_round(env, setup["warmup_pks"], timeout=120, **round_args)
    if warm["refreshed"] != len(setup["warmup_pks"]):
        raise SystemExit(f"warm-up did not finish: {warm}")
    cpu = CpuMeter(server=server, worker=worker)
    timed = worker_round(env, setup["timed_pks"], timeout=args.timeout, **round_args)
    portal_cpu = cpu.read()
    if timed["refreshed"] != n:
        raise SystemExit(f"the worker refreshed {timed['refreshed']} of {n} in time: {timed}")

    tokens = setup["bare_refresh_tokens"]
    bare_args = (setup["token_url"], setup["bare_client_id"], setup["bare_secret"])
    _, warm_ok, warm_failures = bare_loop(*bare_args, tokens[:concurrency], concurrency)
    cpu = CpuMeter(server=server, client=None)
    seconds, ok, failures = bare_loop(*bare_args, tokens[concurrency:], concurrency)
    bare_cpu = cpu.read()
    if warm_ok != concurrency or ok != n:
        raise SystemExit(
            f"bare loop: {ok}/{n} ok; first failures: {(warm_failures + failures)[:3]}"
        )

    portal_rate, bare_rate = n / timed["seconds"], n / seconds
    ratio = portal_rate / bare_rate
    exact = timed["provider_calls"] == n and not timed["not_active"] and not timed["bad_events"]
    latency = args.provider_latency_ms
    print(
        "Refresh benchmark (Manu Online sandbox on loopback"
        + (f", {latency} ms added at the provider per refresh)" if latency > 0 else ")")
    )
    print(
        f"  setup:  {2 * (n + concurrency)} connections made through obtain_from_code in "
        f"{setup_seconds:.1f} s; database {timed['database']}, broker {timed['broker']}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"  server: gunicorn gthread {args.web_workers} x {web_threads} threads, DEBUG off, "
        "sandbox on the same server and database"
    )
    print(
        f"  worker: celery prefork, concurrency {concurrency}, prefetch 1, acks late; "
        f"{n} connections made due, enqueue_due_refreshes() once "
        f"(enqueued {timed['enqueued']} in {timed['enqueue_seconds']:.2f} s), the DB polled "
        "every 20 ms until each was refreshed; warm-up of "
        f"{concurrency} refreshes before the clock"
    )
    print(
        f"  bare:   {n} refresh-grant POSTs to {setup['token_url'].replace(base, '')} from "
        f"{concurrency} threads (same concurrency), requests.post like the portal (no "
        f"keep-alive), after {concurrency} warm-up calls"
    )
    print(
        f"  portal through the worker: {n} refreshes in {timed['seconds']:6.2f} s = "
        f"{portal_rate:7.1f} refreshes/s"
    )
    print(
        f"  bare loop:                 {n} refreshes in {seconds:6.2f} s = "
        f"{bare_rate:7.1f} refreshes/s"
    )
    print(
        f"  checks: provider saw {timed['provider_calls']} refresh calls for {n} refreshes, "
        f"{timed['not_active']} not active, {timed['bad_events']} failure events: "
        + ("exact" if exact else "NOT exact")
    )
    print(
        "  CPU per refresh (ms, from /proc): portal: "
        + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in portal_cpu.items())
        + "; bare: "
        + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in bare_cpu.items())
    )
    met = ratio >= TARGET_RATIO
    print(
        f"  ratio portal / bare = {ratio:.2f} (target >= {TARGET_RATIO}): "
        + ("met" if met else "NOT met")
    )
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
