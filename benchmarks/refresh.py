"""Refreshes per second end to end through a real Celery worker, beside a bare loop of the same
token-endpoint calls; optionally a sustained run, a wake-up burst against a provider rate
limit, and the beat's due scan at scale (run on demand; not a test).

    .venv/bin/python benchmarks/refresh.py [--connections 200] [--in-flight 4]
        [--pool threads|prefork] [--provider-latency-ms 0,200]
        [--redis redis://127.0.0.1:6379/0 [--database-url …]]
        [--sustained 60] [--burst 2000 --rate-limit 100/10] [--scan-rows 1000000]
        [--no-compare] [--beat-seconds S] [--batch-size B]

What it does, all on 127.0.0.1, with its state in a temporary VAR_DIR removed afterwards:
1. migrates the database (a fresh SQLite file in VAR_DIR; with --redis, DATABASE_URL or
   --database-url may name a PostgreSQL database instead: a fresh, throwaway one; the setup
   refuses a database that already holds scheduled connections, which the picker would take);
2. starts the portal (gunicorn gthread) with the sandbox on, PORTAL_BASE_URL its own URL;
3. `manage.py shell` makes 2 x (N + warm-up) Manu Online connections (the bare loop's half
   only for the comparison), as the tests do: a code minted by the sandbox, exchanged by the
   portal over HTTP (obtain_from_code), and with --burst that many more on an app of their own;
4. starts `celery -A portal worker --pool P --concurrency F` (F = --in-flight: threads of one
   process, or processes; broker: kombu's filesystem transport in VAR_DIR, or Redis with
   --redis, on a queue of this run's own), and samples the resident memory of its processes
   every 0.5 s until the end;
5. warm-up: F connections made due, `enqueue_due_refreshes`, waited for (worker start-up and
   first DB connections stay out of the figures);
6. timed (unless --no-compare): the N other connections made due, then in one `manage.py
   shell` step: the clock starts, `enqueue_due_refreshes` claims and enqueues them (one
   picker call takes them all: REFRESH_BATCH_SIZE is raised to N for this step), and the
   database is polled every 20 ms (one COUNT) until each has a new last_refreshed_at:
   N / elapsed = refreshes per second;
7. bare loop: N refresh-grant POSTs straight to the sandbox token endpoint from F threads,
   each spending a refresh token of the second app, built like the portal's own request
   (form body, client secret in it, a plain requests.post: a new connection per call, where
   the portal's worker keeps one alive per thread and host);
8. --sustained S: for S seconds, at once and every REFRESH_BEAT_SECONDS, the N + F worker
   connections that are idle are made due and `enqueue_due_refreshes` is called, as beat
   does; the rate is the refreshes completed within the window ("refreshed" audit events) / S,
   with the lag from due to refreshed; REFRESH_BATCH_SIZE and REFRESH_BEAT_SECONDS are the
   portal's (or --batch-size, --beat-seconds), so the beat's own ceiling shows;
9. --burst B --rate-limit L/W: a rate limit of L token requests per W s is set on the burst
   app's sandbox client and on the app, its B connections are made due at once, and
   `enqueue_due_refreshes` is called at once and every REFRESH_BEAT_SECONDS until all are
   refreshed: the 429s the sandbox answered, the drain time, and B / L x W, the least the
   limit allows;
10. --scan-rows R (PostgreSQL only): the worker is stopped, `manage.py synthetic_connections`
   seeds rows that INSERT ... SELECT copies until the database holds R, and the beat's claim
   (connections_claim_due, in a rolled-back transaction) is timed, EXPLAIN ANALYZE and wall
   time, median of 20, without and with --scan-backlog queued rows ahead of it.

Fairness: both sides hit the same server and database, with the same number of requests in
flight (F worker threads or processes vs F client threads), after a warm-up of F calls. What
the portal adds is its own work per refresh: the claim and enqueue, the broker round trip (one
per task of up to REFRESH_TASK_SIZE connections), the lease, the rate limiter, storing the
tokens, the audit event.

It also prints the CPU each side spent per refresh (from /proc; PostgreSQL's own is not in
it), and on PostgreSQL how many database sessions were opened per refresh. With the provider
on the same cores and answering at once, both loops are CPU-bound and the ratio is about the
ratio of their CPU costs: a Celery task with a Django ORM refresh costs more than the
sandbox's own handling of the call. --provider-latency-ms makes the sandbox wait in every
refresh of every loop, as a provider across a network does: then the ratio shows what the
portal adds to each refresh's wall time, and how many refreshes it keeps in flight. Given a
list (0,200), steps 6 and 7 run once per latency, in that order, on the same connections (the
bare loop spends the refresh tokens its previous round was given); the sustained run and the
burst run at the last one.

Memory: VmRSS and VmHWM of each process in the worker's session (its pool children too), from
/proc/<pid>/status, summed (a prefork pool's shared pages count once per process: the Pss
sum, from smaps_rollup, counts them once).
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
    group_memory_kib,
    gunicorn_argv,
    log_tail,
    manage,
    scratch_dir,
    wait_ready,
)

TARGET_RATIO = 0.8
TARGET_WORKER_CPU_MS = 4.0
TARGET_MEMORY_MIB = 1024
TARGET_DRAIN = 1.10
MAX_CONNECTIONS, MAX_IN_FLIGHT, MAX_BURST = 5000, 256, 20_000
SCAN_SEED_ROWS = 50_000
SCAN_RUNS = 20


def step(name: str) -> str:
    return f"from benchmarks._sandbox import {name}; {name}()"


SETUP = step("refresh_benchmark_setup")
LATENCY = step("refresh_benchmark_latency")
ROUND = step("refresh_benchmark_round")
SUSTAINED = step("refresh_benchmark_sustained")
BURST = step("refresh_benchmark_burst")
SCAN = step("refresh_benchmark_scan")


def rate_limit(text: str) -> tuple[int, int]:
    try:
        requests_, window = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("REQUESTS/SECONDS, e.g. 100/10") from None
    if requests_ < 1 or window < 1:
        raise argparse.ArgumentTypeError("both parts at least 1")
    return requests_, window


def latencies(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("milliseconds, or a list of them: 0,200") from None
    if any(value < 0 or value > 60_000 for value in values):
        raise argparse.ArgumentTypeError("each from 0 to 60000 ms")
    return values


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", "-n", type=int, default=200)
    parser.add_argument(
        "--in-flight",
        "--concurrency",
        "-c",
        dest="in_flight",
        type=int,
        default=4,
        help="refreshes in flight: the worker's --concurrency (threads or processes) and the "
        "bare loop's threads (--concurrency: the old name)",
    )
    parser.add_argument("--pool", choices=("threads", "prefork"), default="threads")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--provider-latency-ms",
        type=latencies,
        default=[0],
        help="the sandbox sleeps this long in every refresh of every loop (a remote provider); "
        "a list (0,200) compares the loops once per latency",
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
    parser.add_argument(
        "--no-compare", action="store_true", help="skip the portal / bare loop comparison"
    )
    parser.add_argument(
        "--sustained", type=float, default=0, metavar="SECONDS", help="a sustained run (>= 60)"
    )
    parser.add_argument(
        "--burst", type=int, default=0, metavar="N", help="N connections of one client id due"
    )
    parser.add_argument(
        "--rate-limit",
        type=rate_limit,
        default=(100, 10),
        metavar="REQUESTS/SECONDS",
        help="the burst's provider rate limit (default 100/10)",
    )
    parser.add_argument(
        "--scan-rows", type=int, default=0, metavar="ROWS", help="time the due scan (PostgreSQL)"
    )
    parser.add_argument("--scan-backlog", type=int, default=12_000, metavar="ROWS")
    parser.add_argument(
        "--beat-seconds", type=float, help="REFRESH_BEAT_SECONDS for this run (default: portal's)"
    )
    parser.add_argument(
        "--batch-size", type=int, help="REFRESH_BATCH_SIZE for this run (default: the portal's)"
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
        # One picker call takes the whole round (the default batch is 200).
        REFRESH_BATCH_SIZE=str(max(200, len(pks))),
    )


class CpuMeter:
    """CPU seconds spent by each named process session (group_pids; None: this process, the
    bare loop's client threads) between construction and read()."""

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


class MemorySampler(threading.Thread):
    """The summed VmRSS of a process session (group_pids), sampled every `interval` seconds
    from its start; paused while the bare loop runs (its CPU is counted for this process)."""

    def __init__(self, proc: subprocess.Popen, interval: float = 0.5):
        super().__init__(daemon=True)
        self.proc, self.interval = proc, interval
        self.peak_kib = self.samples = 0
        self.paused = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if not self.paused.is_set():
                self.sample()

    def sample(self) -> dict[str, int]:
        now = group_memory_kib(self.proc)
        self.peak_kib = max(self.peak_kib, now["rss"])
        self.samples += 1
        return now

    def report(self, label: str) -> str:
        now = group_memory_kib(self.proc, pss=True)
        self.peak_kib = max(self.peak_kib, now["rss"])
        peak = self.peak_kib / 1024
        met = "met" if peak < TARGET_MEMORY_MIB else "NOT met"
        return (
            f"  worker memory {label} (VmRSS of each of its {now['processes']} processes from "
            f"/proc/<pid>/status, summed; peak over {self.samples} samples 0.5 s apart): "
            f"peak {peak:.1f} MiB, now {now['rss'] / 1024:.1f} MiB; summed VmHWM "
            f"{now['hwm'] / 1024:.1f} MiB; summed Pss now {now['pss'] / 1024:.1f} MiB "
            f"(target peak < {TARGET_MEMORY_MIB} MiB: {met})"
        )


def bare_loop(token_url: str, client_id: str, secret: str, tokens: list[str], threads: int):
    """POST each refresh token once from a pool of threads; (seconds, the new refresh token
    of each, None where the call failed, failures)."""
    failures: list[str] = []
    lock = threading.Lock()

    def one(refresh_token: str) -> str | None:
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
        new = response.json().get("refresh_token") if response.status_code == 200 else None
        if not new:
            with lock:
                failures.append(f"{response.status_code} {response.text[:200]}")
        return new or None

    with ThreadPoolExecutor(threads) as pool:
        started = time.monotonic()
        new = list(pool.map(one, tokens))
        return time.monotonic() - started, new, failures


def per_refresh_ms(cpu: dict[str, float], count: int) -> str:
    return ", ".join(f"{k} {1000 * v / max(1, count):.1f}" for k, v in cpu.items())


def seconds_or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def sessions_line(label: str, sessions: int | None, refreshes: int) -> str | None:
    if sessions is None:
        return None
    return (
        f"  database sessions opened {label} (pg_stat_database.sessions, all clients): "
        f"{sessions} = {sessions / max(1, refreshes):.2f} per refresh"
    )


def main() -> int:
    args = parse_args()
    args.connections = max(1, min(args.connections, MAX_CONNECTIONS))
    args.in_flight = max(1, min(args.in_flight, MAX_IN_FLIGHT))
    args.burst = max(0, min(args.burst, MAX_BURST))
    if args.no_compare and not (args.sustained or args.burst or args.scan_rows):
        raise SystemExit(
            "--no-compare leaves nothing to run: add --sustained, --burst or --scan-rows"
        )
    exit_on_sigterm()
    with scratch_dir("portal-refresh-bench-") as var_dir:
        port = free_port()
        base = f"http://{HOST}:{port}"
        overrides = {
            "SANDBOX_ENABLED": "true",
            "PORTAL_BASE_URL": base,
            "CELERY_BROKER_URL": "filesystem://",
            # The beat spreads its claim over as many tasks as the worker has threads.
            "REFRESH_THREADS": str(args.in_flight),
        }
        if args.beat_seconds:
            overrides["REFRESH_BEAT_SECONDS"] = str(args.beat_seconds)
        if args.batch_size:
            overrides["REFRESH_BATCH_SIZE"] = str(args.batch_size)
        if args.redis:
            overrides.update(REDIS_URL=args.redis, CELERY_BROKER_URL=args.redis)
            if args.database_url:
                overrides["DATABASE_URL"] = args.database_url
        env = environment(var_dir, **overrides)
        queue = f"bench-refresh-{uuid.uuid4().hex[:8]}"
        with Processes(env, log_dir=var_dir) as procs:
            try:
                return run(env, procs, base, port, queue, args)
            except BaseException:
                print(log_tail(var_dir, "worker.log"), file=sys.stderr)
                raise


def run(env, procs, base, port, queue, args) -> int:
    manage(env, "migrate", "--noinput")
    ok = True
    compare = not args.no_compare
    if compare or args.sustained or args.burst:
        ok = run_worker_phases(env, procs, base, port, queue, args, compare)
    if args.scan_rows:
        ok = scan_phase(env, args) and ok
    return 0 if ok else 1


def run_worker_phases(env, procs, base, port, queue, args, compare: bool) -> bool:
    n, in_flight = args.connections, args.in_flight
    web_threads = max(4, in_flight)
    server = procs.start(
        gunicorn_argv(port, workers=args.web_workers, threads=web_threads), log_name="web.log"
    )
    wait_ready(base, server)
    started = time.monotonic()
    pool_n = n if compare or args.sustained else 0
    setup = shell_step(
        env,
        SETUP,
        120 + 2 * (pool_n + in_flight) + args.burst,
        BENCH_CONNECTIONS=str(pool_n),
        BENCH_WARMUP=str(in_flight),
        BENCH_BARE="1" if compare else "0",
        BENCH_BURST=str(args.burst),
    )
    setup_seconds = time.monotonic() - started
    made = pool_n + in_flight + (pool_n + in_flight if compare else 0) + args.burst
    print(
        "Refresh benchmark (Manu Online sandbox on loopback; added at the provider per "
        f"refresh: {', '.join(f'{ms} ms' for ms in args.provider_latency_ms)})"
    )
    print(
        f"  setup:  {made} connections made through obtain_from_code in {setup_seconds:.1f} s; "
        f"database {setup['database']}, broker {'redis' if args.redis else 'filesystem'}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"  server: gunicorn gthread {args.web_workers} x {web_threads} threads, DEBUG off, "
        "sandbox on the same server and database"
    )
    unit = "threads in one process" if args.pool == "threads" else "processes"
    print(
        f"  worker: celery -A portal worker --pool {args.pool} --concurrency {in_flight} "
        f"({in_flight} {unit}), prefetch and acks as the settings say; the beat's claim in "
        f"tasks of up to REFRESH_TASK_SIZE={setup['task_size']} "
        f"connections over REFRESH_THREADS={in_flight}; warm-up of {in_flight} refreshes "
        "before any clock"
    )
    if setup["max_connections"]:
        need = in_flight + args.web_workers * web_threads + 3
        if need > setup["max_connections"]:
            print(
                f"  warning: up to {need} database connections (worker {in_flight}, web "
                f"{args.web_workers} x {web_threads}, shell steps) against PostgreSQL's "
                f"max_connections {setup['max_connections']}"
            )

    worker = procs.start(
        celery_argv(
            "worker", "--pool", args.pool, "--concurrency", str(in_flight), "--queues", queue
        ),
        log_name="worker.log",
    )
    memory = MemorySampler(worker)
    memory.start()
    try:
        set_latency(env, setup, args.provider_latency_ms[0])
        round_args = {"client_id": setup["worker_client_id"], "queue": queue}
        warm = worker_round(env, setup["warmup_pks"], timeout=120, **round_args)
        if warm["refreshed"] != len(setup["warmup_pks"]):
            raise SystemExit(f"warm-up did not finish: {warm}")
        ok = True
        tokens = setup["bare_refresh_tokens"]
        for index, latency in enumerate(args.provider_latency_ms if compare else ()):
            if index:
                set_latency(env, setup, latency)
            print(f"  comparison with {latency} ms at the provider:")
            exact, tokens = compare_phase(
                env, args, setup, server, worker, memory, round_args, base, tokens
            )
            ok = exact and ok
            print(memory.report("after the comparison"))
        if args.sustained:
            ok = sustained_phase(env, args, setup, server, worker, queue) and ok
            print(memory.report("after the sustained run"))
        if args.burst:
            ok = burst_phase(env, args, setup, queue) and ok
            print(memory.report("after the burst"))
    finally:
        memory.stopped.set()
    procs.stop(worker)  # the scan must not share the database with a worker
    return ok


def set_latency(env: dict, setup: dict, latency_ms: int) -> None:
    shell_step(
        env,
        LATENCY,
        120,
        BENCH_CLIENT_IDS=json.dumps(setup["client_ids"]),
        BENCH_LATENCY_MS=str(latency_ms),
    )


def compare_phase(env, args, setup, server, worker, memory, round_args, base, tokens):
    """One timed round beside one bare loop, spending `tokens`; (exact, the bare loop's new
    refresh tokens, in the same order)."""
    n, in_flight = args.connections, args.in_flight
    cpu = CpuMeter(server=server, worker=worker)
    timed = worker_round(env, setup["timed_pks"], timeout=args.timeout, **round_args)
    portal_cpu = cpu.read()
    if timed["refreshed"] != n:
        raise SystemExit(f"the worker refreshed {timed['refreshed']} of {n} in time: {timed}")

    bare_args = (setup["token_url"], setup["bare_client_id"], setup["bare_secret"])
    memory.paused.set()  # the sampler's CPU would count as the bare client's
    try:
        _, warm_new, warm_failures = bare_loop(*bare_args, tokens[:in_flight], in_flight)
        cpu = CpuMeter(server=server, client=None)
        seconds, new, failures = bare_loop(*bare_args, tokens[in_flight:], in_flight)
        bare_cpu = cpu.read()
    finally:
        memory.paused.clear()
    warm_ok, ok = (sum(token is not None for token in got) for got in (warm_new, new))
    if warm_ok != in_flight or ok != n:
        raise SystemExit(
            f"bare loop: {ok}/{n} ok; first failures: {(warm_failures + failures)[:3]}"
        )

    portal_rate, bare_rate = n / timed["seconds"], n / seconds
    ratio = portal_rate / bare_rate
    exact = timed["provider_calls"] == n and not timed["not_active"] and not timed["bad_events"]
    print(
        f"  timed:  {n} connections made due, enqueue_due_refreshes() once "
        f"(enqueued {timed['enqueued']} in {timed['enqueue_seconds']:.2f} s), the DB polled "
        "every 20 ms until each was refreshed"
    )
    print(
        f"  bare:   {n} refresh-grant POSTs to {setup['token_url'].replace(base, '')} from "
        f"{in_flight} threads (as many in flight as the worker), requests.post with the "
        f"portal's form body (a new connection per call; the worker keeps its alive), after "
        f"{in_flight} warm-up calls"
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
    line = sessions_line("during the timed round", timed.get("db_sessions"), n)
    if line:
        print(line)
    print(
        "  CPU per refresh (ms, utime + stime from /proc over each timed loop / refreshes): "
        f"portal: {per_refresh_ms(portal_cpu, n)}; bare: {per_refresh_ms(bare_cpu, n)}; "
        + worker_cpu_verdict(portal_cpu, n)
    )
    met = ratio >= TARGET_RATIO
    print(
        f"  ratio portal / bare = {ratio:.2f} (target >= {TARGET_RATIO}): "
        + ("met" if met else "NOT met")
    )
    return exact, warm_new + new


def worker_cpu_verdict(cpu: dict[str, float], count: int) -> str:
    met = 1000 * cpu["worker"] / max(1, count) <= TARGET_WORKER_CPU_MS
    return f"target worker <= {TARGET_WORKER_CPU_MS:g} ms: " + ("met" if met else "NOT met")


def sustained_phase(env, args, setup, server, worker, queue) -> bool:
    seconds = max(1.0, args.sustained)
    cpu = CpuMeter(server=server, worker=worker)
    result = shell_step(
        env,
        SUSTAINED,
        seconds + args.timeout + 120,
        BENCH_APP_ID=str(setup["worker_app_id"]),
        BENCH_QUEUE=queue,
        BENCH_SECONDS=str(seconds),
        BENCH_TIMEOUT=str(args.timeout),
    )
    used = cpu.read()
    beat, batch, pool = result["beat_seconds"], result["batch_size"], result["pool"]
    ceiling = min(batch, pool) / beat
    rate = result["refreshed"] / result["seconds"]
    short = " (the issue asks for at least 60 s)" if seconds < 60 else ""
    print(
        f"  sustained, {args.provider_latency_ms[-1]} ms at the provider: "
        f"{result['seconds']:.1f} s{short}; at once and every {beat:g} s "
        f"(REFRESH_BEAT_SECONDS) the idle ones of {pool} connections made due (next_refresh_at "
        f"= now) and enqueue_due_refreshes() called, as beat does: {result['ticks']} ticks "
        f"enqueued {result['enqueued']}; it claims at most {batch} (REFRESH_BATCH_SIZE) a tick, "
        f"so the beat allows at most min({batch}, {pool}) / {beat:g} s = {ceiling:.1f} /s"
    )
    print(
        f"  sustained rate: {result['refreshed']} refreshes completed within the window "
        f'("refreshed" audit events created in it) / {result["seconds"]:.1f} s = '
        f"{rate:7.1f} refreshes/s"
        + (
            " (the beat's ceiling: raise --batch-size or lower --beat-seconds to see the worker's)"
            if rate >= 0.9 * ceiling
            else ""
        )
    )
    print(
        f"  sustained lag, made due to refreshed (the tick that set next_refresh_at to its "
        f'"refreshed" event), {result["lags"]} refreshes: p50 '
        f"{seconds_or_dash(result['lag_p50'])}, p99 {seconds_or_dash(result['lag_p99'])}, "
        f"max {seconds_or_dash(result['lag_max'])}"
    )
    print(
        f"  sustained tail: {result['tail']} refreshes queued before the window closed finished "
        f"within {result['tail_seconds']:.1f} s after it (not in the rate); "
        f"{result['still_busy']} still queued or leased at the end; {result['parked']} made "
        "due but never claimed, put an hour ahead"
    )
    counted = result["refresh_count_delta"]
    print(
        "  sustained CPU per refresh (ms, utime + stime from /proc over window and tail / "
        f"{counted} refreshes by refresh_count): {per_refresh_ms(used, counted)}; "
        + worker_cpu_verdict(used, counted)
    )
    line = sessions_line("during the sustained run", result.get("db_sessions"), counted)
    if line:
        print(line)
    exact = not result["bad_events"] and not result["not_active"] and not result["still_busy"]
    print(
        f"  sustained checks: {result['not_active']} not active, {result['bad_events']} "
        f"failure events, {result['still_busy']} left queued: "
        + ("exact" if exact else "NOT exact")
    )
    return exact


def burst_phase(env, args, setup, queue) -> bool:
    n = args.burst
    limit, window = args.rate_limit
    least = n / limit * window
    timeout = max(args.timeout, 3 * least + 180)
    result = shell_step(
        env,
        BURST,
        timeout + 120,
        BENCH_APP_ID=str(setup["burst_app_id"]),
        BENCH_CLIENT_ID=setup["burst_client_id"],
        BENCH_QUEUE=queue,
        BENCH_LIMIT=str(limit),
        BENCH_WINDOW=str(window),
        BENCH_TIMEOUT=str(timeout),
    )
    refused = result["provider_calls"] - result["issued"]
    print(
        f"  burst: {n} connections of one client id made due at once; the sandbox client and "
        f"the app limited to {limit} token requests per {window} s; enqueue_due_refreshes() at "
        f"once and every {result['beat_seconds']:g} s (REFRESH_BEAT_SECONDS, at most "
        f"{result['batch_size']} a tick) until all were refreshed: {result['ticks']} ticks "
        f"enqueued {result['enqueued']}"
    )
    print(
        f"  burst 429s: the sandbox got {result['provider_calls']} refresh calls for this "
        f"client id (its TokenRequest rows) and issued {result['issued']} access tokens: "
        f"{refused} refused (429: no other fault was injected); the portal recorded "
        f'{result["portal_429"]} "refresh failed" events with HTTP 429 and '
        f"{result['held_back']} held back by its own limiter (not sent)"
    )
    drain = result["drain_seconds"]
    drained = result["refreshed"] == n
    ratio = drain / least if drain and drained else None
    met = drained and refused == 0 and ratio is not None and ratio <= TARGET_DRAIN
    windows = -(-n // limit)
    print(
        f"  burst drain: {result['refreshed']} of {n} refreshed; first enqueue to the newest "
        f"last_refreshed_at: {seconds_or_dash(drain)}; the limit allows no less than "
        f"{n} / {limit} x {window} s = {least:.1f} s (strictly, the last of {windows} windows "
        f"opens at {(windows - 1) * window} s, plus one call): "
        + (f"{100 * ratio:.0f} %" if ratio is not None else "not drained")
        + f" of it (target: no 429 and <= {100 * TARGET_DRAIN:.0f} %): "
        + ("met" if met else "NOT met")
    )
    exact = drained and not result["not_active"] and not result["reauth_events"]
    print(
        f"  burst checks: {result['not_active']} not active, {result['reauth_events']} "
        "re-authorisation events: " + ("exact" if exact else "NOT exact")
    )
    return exact


def scan_phase(env, args) -> bool:
    url = env.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(
            "  due scan: skipped: PostgreSQL only (with --redis, DATABASE_URL or "
            "--database-url naming one); this run's database is SQLite"
        )
        return True
    rows, backlog = args.scan_rows, args.scan_backlog
    tenant = f"bench-scan-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    manage(
        env,
        "synthetic_connections",
        "--tenant",
        tenant,
        "--create-tenant",
        "--count",
        str(min(rows, SCAN_SEED_ROWS)),
        timeout=1800,
    )
    seeded = time.monotonic() - started
    result = shell_step(
        env,
        SCAN,
        3600,
        BENCH_SCAN_TENANT=tenant,
        BENCH_SCAN_ROWS=str(rows),
        BENCH_SCAN_BACKLOG=str(backlog),
        BENCH_SCAN_RUNS=str(SCAN_RUNS),
    )
    runs = result["runs"]
    print(
        f"  due scan: {result['rows']} connections in the database ({min(rows, SCAN_SEED_ROWS)} "
        f"by manage.py synthetic_connections in {seeded:.1f} s, the tenant grown to "
        f"{result['tenant_rows']} with INSERT ... SELECT in {result['grow_seconds']:.1f} s), "
        "the refreshable ones due a day ahead, VACUUM ANALYZE; the beat's claim "
        "connections_claim_due(limit "
        f"{result['batch_size']}) in a rolled-back transaction, no worker running"
    )
    for label, key in (
        ("without a backlog", "without"),
        (f"with {result['queued']} queued rows ahead", "with"),
    ):
        m = result[key]
        print(
            f"  due scan {label}: EXPLAIN ANALYZE of its SELECT, median of {runs}: "
            f"{m['scan_ms']:.2f} ms (max {m['scan_max_ms']:.2f}; plan {m['nodes']}; "
            f"{m['removed']} rows removed by filters; {m['buffers']} buffers); the whole claim, "
            f"wall, median of {runs}: {m['claim_ms']:.2f} ms; claimed {m['claimed']}"
        )
    without, with_backlog = result["without"]["scan_ms"], result["with"]["scan_ms"]
    walls = result["without"]["claim_ms"], result["with"]["claim_ms"]
    flat = with_backlog <= max(1.5 * without, without + 1.0)
    print(
        f"  due scan with / without the backlog: its SELECT {with_backlog:.2f} / {without:.2f} "
        f"ms, the whole claim {walls[1]:.2f} / {walls[0]:.2f} ms (target: as fast, here the "
        "SELECT at most 1.5 x or 1 ms more): " + ("met" if flat else "NOT met")
    )
    return True


if __name__ == "__main__":
    sys.exit(main())
