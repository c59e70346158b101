"""The expiry report and the Connections list at scale, on PostgreSQL (run on demand).

    .venv/bin/python benchmarks/report.py [--tenant-rows 100000] [--total-rows 1000000]
        [--events 200000] [--runs 5] [--database-url postgres://postgres@127.0.0.1:5432/x]

What it does, all on 127.0.0.1:
1. creates a fresh PostgreSQL database (dropped afterwards) and migrates it, DEBUG off;
2. makes one tenant with an ops person and --tenant-rows synthetic connections
   (`manage.py synthetic_connections`, with --events refresh events over the last 7 days,
   rolled up for the chart), then copies those rows into more tenants with INSERT … SELECT
   until the database holds --total-rows, and runs VACUUM ANALYZE (as autovacuum would);
3. starts gunicorn (one gthread worker), signs the ops person in with requests;
4. for each page, one warm-up and --runs timed GETs on the client; prints the median and the
   slowest, the size, and the number of SQL queries the page makes (counted once in a
   separate process with Django's CaptureQueriesContext, the same view and the same data);
5. downloads the CSV of all --tenant-rows rows, and of a tenth of them, and prints the time and
   the gunicorn worker's peak resident memory after each: it must not grow with the rows.
Target: every page under 300 ms.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

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

TARGET_MS = 300.0
PASSWORD = "bench-ops-password"
PEOPLE = """
from django.contrib.auth import get_user_model
from portal.models import Membership, Tenant
t = Tenant.objects.create(slug="bench", name="Bench")
User = get_user_model()
ops = User.objects.create_user("ops", password="{password}")
Membership.objects.create(user=ops, tenant=t, role="ops")
for i in range(20):
    Membership.objects.create(user=User.objects.create_user(f"owner{{i}}"), tenant=t)
"""
COPY = """
from django.db import connection
from portal.models import Tenant
src = Tenant.objects.get(slug="bench")
with connection.cursor() as c:
    for i in range({copies}):
        t = Tenant.objects.create(slug=f"other-{{i}}", name=f"Other {{i}}")
        c.execute('''
            INSERT INTO connections_privateapp (tenant_id, name, provider, status, grant_type,
                client_id, client_auth, pkce_mode, account_ids, redirect_uris, scopes,
                connector_uids, scope_separator, internal_comments, application_url,
                authorize_url, token_url, revoke_url, api_base_url, test_path, issuer,
                refresh_policy, created_at, updated_at)
            SELECT %s, name, provider, status, grant_type, client_id, client_auth, pkce_mode,
                account_ids, redirect_uris, scopes, connector_uids, scope_separator,
                internal_comments, application_url, authorize_url, token_url, revoke_url,
                api_base_url, test_path, issuer, refresh_policy, now(), now()
            FROM connections_privateapp WHERE tenant_id = %s''', [t.pk, src.pk])
        c.execute('''
            INSERT INTO connections_connection (tenant_id, app_id, kind, status, account_id,
                account_name, refresh_token_hash, token_type, scope, access_expires_at,
                refresh_expires_at, next_refresh_at, revoke_retry_at, last_refreshed_at,
                refresh_count, failure_count, last_error, lease_owner, inflight_refresh_hash,
                version, created_at, updated_at)
            SELECT %s, b.id, c.kind, c.status, c.account_id, c.account_name, '', 'Bearer', '',
                c.access_expires_at, c.refresh_expires_at, c.next_refresh_at,
                c.revoke_retry_at, c.last_refreshed_at, c.refresh_count, c.failure_count,
                c.last_error, '', '', 0, now(), now()
            FROM connections_connection c
            JOIN connections_privateapp a ON a.id = c.app_id
            JOIN connections_privateapp b ON b.tenant_id = %s AND b.name = a.name
            WHERE c.tenant_id = %s LIMIT %s''', [t.pk, t.pk, src.pk, {rows_each}])
        print("copied into", t.slug, flush=True)
"""
COUNT_QUERIES = """
import json
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="{host}")
client.force_login(get_user_model().objects.get(username="ops"))
counts = {{}}
for path in json.loads('{paths}'):
    client.get(path)  # warm: the session, the apps
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    counts[path] = len(ctx.captured_queries)
print(json.dumps(counts))
"""
FACTS = """
import json
from connections.models import Connection, PrivateApp
from portal.models import Membership
a = PrivateApp.objects.filter(tenant__slug="bench", provider="manus").first()
o = Membership.objects.filter(tenant__slug="bench", role="member").first()
print(json.dumps({"app": a.pk, "owner": o.user_id, "total": Connection.objects.count(),
                  "tenant": Connection.objects.filter(tenant__slug="bench").count()}))
"""
VACUUM = """
from django.db import connection
with connection.cursor() as c:
    c.execute("VACUUM ANALYZE")
"""


def pages(app_id: int, owner_id: int) -> dict[str, str]:
    r, c = "/t/bench/report/", "/t/bench/connections/"
    return {
        "report: summary, attention, charts, first page": r,
        "report: needs re-authorisation": f"{r}?attention=needs_reauth",
        "report: lapsing within 7 days, by expiry": f"{r}?attention=lapsing&within=7",
        "report JSON, first page": f"{r}?format=json",
        "connections: first page (newest)": c,
        "connections: sorted by refresh expiry": f"{c}?sort=refresh_expires",
        "connections: failing, by next refresh desc": f"{c}?status=failing&sort=-next_refresh",
        "connections: one app, by access expiry": f"{c}?app={app_id}&sort=access_expires",
        "connections: one owner, lapsing in 30 d": f"{c}?owner={owner_id}&within=30",
        "connections: account search": f"{c}?q=Account%200420",
        "connections: page 1000 of 2000": f"{c}?sort=refresh_expires&page=1000",
        "connections: page 2000, by last refresh": f"{c}?sort=-last_refreshed&page=2000",
        "audit trail: first page": "/t/bench/audit/",
        "audit trail: refreshes of one app": f"/t/bench/audit/?kind=refreshed&app={app_id}",
    }


def psql(url: str, sql: str) -> None:
    parsed = urlparse(url)
    admin = parsed._replace(path="/postgres").geturl()
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)  # noqa: S603,S607


def peak_rss_kb(server: subprocess.Popen) -> int:
    """VmHWM of gunicorn's worker (the master's child)."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{server.pid}$", text, re.M):
            peak = max(peak, int(re.search(r"^VmHWM:\s+(\d+)", text, re.M).group(1)))
    return peak


def timed(session, url: str, runs: int) -> tuple[list[float], int]:
    session.get(url).raise_for_status()
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        response = session.get(url)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant-rows", type=int, default=100_000)
    parser.add_argument("--total-rows", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_report"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure a database kept by --keep")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50 or not 1000 <= args.tenant_rows <= args.total_rows <= 5_000_000:
        raise SystemExit("runs 1-50; 1000 <= tenant rows <= total rows <= 5,000,000")
    exit_on_sigterm()
    db = urlparse(args.database_url).path.lstrip("/")
    if not args.reuse:
        psql(args.database_url, f'DROP DATABASE IF EXISTS "{db}"')
        psql(args.database_url, f'CREATE DATABASE "{db}"')
    try:
        with scratch_dir("report-bench-") as var_dir:
            run(args, var_dir)
    finally:
        if not args.keep:
            psql(args.database_url, f'DROP DATABASE IF EXISTS "{db}"')


def make_data(env: dict, args) -> None:
    manage(env, "shell", "-c", PEOPLE.format(password=PASSWORD))
    manage(
        env, "synthetic_connections", "--tenant", "bench", "--count", str(args.tenant_rows),
        "--events", str(args.events), timeout=1800,
    )
    rest = args.total_rows - args.tenant_rows
    copies = -(-rest // args.tenant_rows) if rest else 0
    if copies:
        rows_each = -(-rest // copies)
        manage(env, "shell", "-c", COPY.format(copies=copies, rows_each=rows_each), timeout=3600)
    manage(env, "shell", "-c", VACUUM, timeout=1800)


def run(args, var_dir: str) -> None:
    env = environment(var_dir, DATABASE_URL=args.database_url, CELERY_BROKER_URL="memory://")
    setup = time.monotonic()
    manage(env, "migrate", "--noinput")
    if not args.reuse:
        make_data(env, args)
    facts = json.loads(manage(env, "shell", "-c", FACTS).strip().splitlines()[-1])
    print(
        f"data: {facts['tenant']:,} connections in the tenant, {facts['total']:,} in the "
        f"database; set up in {time.monotonic() - setup:.0f} s"
    )
    targets = pages(facts["app"], facts["owner"])
    port = free_port()
    base = f"http://{HOST}:{port}"
    counts = json.loads(manage(env, "shell", "-c", COUNT_QUERIES.format(
        host=HOST, paths=json.dumps(list(targets.values()))
    )).strip().splitlines()[-1])
    with Processes(env, var_dir) as procs:
        server = procs.start(gunicorn_argv(port, workers=1, threads=4), log_name="web.log")
        wait_ready(base, server)
        session = requests.Session()
        login = session.get(f"{base}/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        session.post(
            f"{base}/login/",
            data={"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/login/"},
        ).raise_for_status()
        print(f"\n{'page':52} {'median':>8} {'max':>8} {'KiB':>6} {'SQL':>4}")
        worst = 0.0
        for name, path in targets.items():
            times, size = timed(session, base + path, args.runs)
            median = statistics.median(times)
            worst = max(worst, median)
            print(f"{name:52} {median:7.0f}ms {max(times):7.0f}ms {size / 1024:6.0f} "
                  f"{counts[path]:4}")
        print(f"\npeak RSS of the gunicorn worker after the pages: {peak_rss_kb(server) / 1024:.0f} MiB")
        for label, query in (("a tenth (lapsing within 40 days)", "?within=40"),
                             (f"all {facts['tenant']:,}", "")):
            started = time.perf_counter()
            with session.get(f"{base}/t/bench/report/{query}{'&' if query else '?'}format=csv",
                             stream=True) as response:
                response.raise_for_status()
                lines = sum(chunk.count(b"\n") for chunk in response.iter_content(65536))
            took = time.perf_counter() - started
            print(f"CSV of {label}: {lines - 1:,} rows in {took:.1f} s; worker peak RSS "
                  f"{peak_rss_kb(server) / 1024:.0f} MiB")
    verdict = "PASS" if worst < TARGET_MS else "FAIL"
    print(f"\nslowest page median {worst:.0f} ms (target < {TARGET_MS:.0f} ms): {verdict}")
    if verdict == "FAIL":
        sys.exit(1)


if __name__ == "__main__":
    main()
