"""Token API latency and throughput beside a bare Django view, on one server (run on demand).

    .venv/bin/python benchmarks/token_api.py [--requests 2000] [--threads 8] [--workers 2]

What it does, all on 127.0.0.1 and in a throwaway directory that is removed afterwards:
1. migrates a fresh SQLite database under a temporary VAR_DIR (DEBUG off, fresh keys);
2. creates a tenant, an API key and a connection whose access token is valid for an hour,
   through the ORM in `manage.py shell` (no provider is called: the token is valid);
3. starts gunicorn (gthread) on a free loopback port;
4. for each target, warms up, then sends a fixed number of GETs from a thread pool, one
   requests.Session per thread (keep-alive), timing each request on the client;
5. prints p50 / p90 / p99 / max latency and requests per second, and the target check.

Each target runs twice: with one client thread (no queueing: the latency at a steady load the
server keeps up with; the target applies here) and with the thread pool (throughput, and the
latency once requests queue for the server's CPUs).

When `wrk` is installed (Debian: `apt-get install wrk`), each target is also measured with it,
one keep-alive connection and then as many as the thread pool, for a fixed time: a C client
takes far less of the shared CPUs than Python's requests, so its figures are closer to what
the server itself adds. The target is judged on both.

The baseline is GET /login/: a real Django view through the same middleware stack, with a
template render, but no API key lookup and no token read.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from _harness import (
    HOST,
    Processes,
    environment,
    exit_on_sigterm,
    free_port,
    gunicorn_argv,
    manage,
    scratch_dir,
    wait_ready,
)

TARGET_P99_MS = 10.0
MAX_REQUESTS, MAX_THREADS = 100_000, 64
WARMUP = 100

SETUP = """
import json, secrets
from datetime import timedelta
from django.utils import timezone
from connections import apikeys
from connections.models import Connection, PrivateApp
from portal.models import Tenant
tenant = Tenant.objects.create(name="Bench", slug="bench")
app = PrivateApp.objects.create(tenant=tenant, name="Manu", provider="manu_online",
    status="enabled", grant_type="authorization_code", client_id="bench")
now = timezone.now()
conn = Connection.objects.create(tenant=tenant, app=app, account_id="1",
    access_token="at-" + secrets.token_urlsafe(24), refresh_token="rt-" + secrets.token_urlsafe(24),
    access_expires_at=now + timedelta(hours=1), refresh_expires_at=now + timedelta(days=730),
    next_refresh_at=now + timedelta(minutes=55))
key = apikeys.create(tenant=tenant, name="bench", actor=None).plaintext
print("BENCH" + json.dumps({"connection": conn.pk, "key": key}))
"""


def measure(url: str, headers: dict, *, n: int, threads: int) -> dict:
    local = threading.local()

    def one(_i: int) -> tuple[float, int]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        response = session.get(url, headers=headers, timeout=10)
        return time.perf_counter() - started, response.status_code

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(WARMUP)))
        started = time.perf_counter()
        results = list(pool.map(one, range(n)))
        wall = time.perf_counter() - started
    latencies = sorted(t * 1000 for t, _ in results)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "ok": sum(1 for _, s in results if s == 200),
        "n": n,
        "p50": q[49],
        "p90": q[89],
        "p99": q[98],
        "max": latencies[-1],
        "rps": n / wall,
    }


WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
WRK_QUANTILE = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_MAX = re.compile(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", re.M)
WRK_COUNT = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s)")
WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def measure_wrk(url: str, headers: dict, *, seconds: int, connections: int) -> dict:
    """wrk for `seconds` over `connections` keep-alive connections, after a 1-second warm-up."""
    argv = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]

    def run(duration: int) -> str:
        # Fixed argument list; the URL and header are this script's own loopback values.
        return subprocess.run(  # noqa: S603
            [*argv, "-d", f"{duration}s", url],
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=True,
        ).stdout

    run(1)
    out = run(seconds)
    quantiles = {q: float(v) * WRK_UNITS[u] for q, v, u in WRK_QUANTILE.findall(out)}
    peak = WRK_MAX.search(out)
    count = WRK_COUNT.search(out)
    bad = WRK_BAD.search(out)
    if len(quantiles) != 3 or peak is None or count is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    n = int(count.group(1))
    return {
        "ok": n - int(bad.group(1) if bad else 0),
        "n": n,
        "p50": quantiles["50"],
        "p90": quantiles["90"],
        "p99": quantiles["99"],
        "max": float(peak.group(1)) * WRK_UNITS[peak.group(2)],
        "rps": n / (float(count.group(2)) * WRK_UNITS[count.group(3)] / 1000),
    }


def report(name: str, r: dict) -> None:
    print(
        f"  {name:<50} {r['ok']:>6}/{r['n']:<6} ok   p50 {r['p50']:6.2f} ms   "
        f"p90 {r['p90']:6.2f} ms   p99 {r['p99']:6.2f} ms   max {r['max']:7.2f} ms   "
        f"{r['rps']:7.0f} req/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="per wrk run, if installed")
    args = parser.parse_args()
    wrk_seconds = max(1, min(args.wrk_seconds, 120))
    has_wrk = shutil.which("wrk") is not None
    n = max(1, min(args.requests, MAX_REQUESTS))
    threads = max(1, min(args.threads, MAX_THREADS))

    exit_on_sigterm()
    with scratch_dir("portal-bench-") as var_dir:
        env = environment(var_dir)
        manage(env, "migrate", "--noinput")
        out = manage(env, "shell", "-c", SETUP)
        setup = json.loads(out.split("BENCH", 1)[1])
        port = free_port()
        base = f"http://{HOST}:{port}"
        with Processes(env) as procs:
            server = procs.start(
                gunicorn_argv(port, workers=args.workers, threads=args.worker_threads)
            )
            wait_ready(base, server)
            token_url = f"{base}/api/v1/connections/{setup['connection']}/token"
            auth = {"Authorization": f"Bearer {setup['key']}"}
            check = requests.get(token_url, headers=auth, timeout=5)
            if check.status_code != 200 or "refresh_token" in check.text:
                raise SystemExit(f"token API sanity check failed: {check.status_code} {check.text}")

            # One client thread first: the service time without queueing (the latency a
            # caller sees at a steady, unsaturated load); then the pool: throughput and
            # queueing.
            targets = (
                ("GET /login/ (bare Django view)", f"{base}/login/", {}),
                ("GET /api/v1/connections/<id>/token", token_url, auth),
            )
            runs = {
                (label, conc, "requests"): measure(url, headers, n=n, threads=conc)
                for conc in dict.fromkeys((1, threads))
                for label, url, headers in targets
            }
            if has_wrk:
                runs |= {
                    (label, conc, "wrk"): measure_wrk(
                        url, headers, seconds=wrk_seconds, connections=conc
                    )
                    for conc in dict.fromkeys((1, threads))
                    for label, url, headers in targets
                }

    print("Token API benchmark")
    print(
        f"  server: gunicorn gthread, {args.workers} workers x {args.worker_threads} threads, "
        f"DEBUG off, SQLite (WAL) in a temp dir, persistent DB connections, {os.cpu_count()} CPUs"
    )
    print(
        f"  load:   {n} timed GETs per target after {WARMUP} warm-up, {threads} client threads, "
        "one keep-alive requests.Session per thread; latency timed on the client"
    )
    print("          (client and server share the machine, so figures include client CPU time)")
    if has_wrk:
        print(
            f"          and with wrk: {wrk_seconds} s per target after a 1 s warm-up, 1 and "
            f"{threads} keep-alive connections; latency timed by wrk"
        )
    else:
        print("          (wrk not installed: its runs are skipped)")
    print(f"  machine load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for (label, conc, client), result in runs.items():
        report(f"{label} [{client}, {conc}]", result)
    for client in ("requests", "wrk") if has_wrk else ("requests",):
        token = runs[("GET /api/v1/connections/<id>/token", 1, client)]
        bare = runs[("GET /login/ (bare Django view)", 1, client)]
        met = token["p99"] < TARGET_P99_MS and token["ok"] == token["n"]
        print(
            f"  target ({client}): p99 < {TARGET_P99_MS:.0f} ms for a valid token, 1 connection: "
            f"{'met' if met else 'NOT met'}; token API p99 / bare view p99 = "
            f"{token['p99'] / bare['p99']:.2f}"
        )


if __name__ == "__main__":
    main()
