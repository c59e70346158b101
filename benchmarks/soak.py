"""Soak: a demo connection stays connected through beat-driven rotations with a 30-second
access-token lifetime while the worker is restarted twice (run on demand; not a test).

    .venv/bin/python benchmarks/soak.py [--rotations 60]

What it does, all on 127.0.0.1, with its state in a temporary VAR_DIR removed afterwards:
1. migrates a fresh SQLite database and starts the portal (gunicorn) with the sandbox on;
2. `manage.py demo`, then re-registers the demo's Manu Online sandbox client with
   access_lifetime=30 and connects the demo user's account to it (a code minted by the
   sandbox, exchanged by the portal over HTTP);
3. starts `celery -A portal worker` and `celery -A portal beat` with REFRESH_BEAT_SECONDS=5:
   from here on only beat's picker refreshes the connection (warm policy: a refresh falls due
   some 6-9 s before each access token expires);
4. polls the database each half second and prints every rotation: the count, the status,
   the seconds since the previous one; restarts the worker (SIGTERM: a warm shutdown, then a
   new process) after 1/3 and 2/3 of the rotations;
5. PASS when the status is active, refresh_count >= rotations, the connection has no
   reauth_needed or refresh_failed event, and the sandbox holds its stored refresh token as
   active. Gives up after rotations x 60 s. Exit code 0 on PASS, 1 on FAIL.
"""

import argparse
import os
import sys
import time

import _harness as h

ACCESS_LIFETIME = 30
BEAT_SECONDS = 5
MAX_ROTATIONS = 10_000
POLL = 0.5


def django_setup(env: dict) -> None:
    """This process reads the run's database through the ORM, with the run's settings."""
    os.environ.update(env)
    sys.path.insert(0, str(h.ROOT))
    import django

    django.setup()


def demo_connection():
    """The demo's Manu Online app, its sandbox client now issuing 30-second access tokens,
    and a connection of the demo user's first account made through it."""
    from django.contrib.auth import get_user_model

    from benchmarks._sandbox import connect
    from connections.models import PrivateApp
    from sandbox import registry
    from sandbox.demo import DEMO_USERNAME, MANU_ACCOUNTS
    from sandbox.models import SandboxUser

    app = PrivateApp.objects.get(tenant__slug="demo", provider="manu_online")
    registry.register_client(
        provider=app.provider,
        client_id=app.client_id,
        name=app.name,
        secrets=[app.client_secrets.get(is_primary=True).value],
        redirect_uris=app.redirect_uris,
        account_ids=app.account_ids,
        scopes=app.scopes,
        access_lifetime=ACCESS_LIFETIME,
    )
    demo_user = SandboxUser.objects.get(provider=app.provider, username=DEMO_USERNAME)
    admin = get_user_model().objects.get(username="admin")
    return connect(app, admin, demo_user, account=MANU_ACCOUNTS[0])


def snapshot(pk: int) -> dict:
    from connections.models import Connection

    return Connection.objects.values("status", "refresh_count", "last_error").get(pk=pk)


def verdict(pk: int, rotations: int) -> tuple[bool, list[str]]:
    from benchmarks._sandbox import BAD_EVENTS
    from connections.models import AuditEvent, Connection
    from sandbox import registry

    conn = Connection.objects.get(pk=pk)
    events = AuditEvent.objects.filter(connection=conn)
    bad = list(events.filter(kind__in=BAD_EVENTS).values_list("kind", "message"))
    scheduled = events.filter(kind=AuditEvent.Kind.REFRESHED, data__reason="scheduled").count()
    active_at_sandbox = registry.refresh_token_is_active(conn.app.provider, conn.refresh_token)
    checks = [
        (conn.status == Connection.Status.ACTIVE, f"status {conn.status}"),
        (conn.refresh_count >= rotations, f"refresh_count {conn.refresh_count} >= {rotations}"),
        (not bad, f"reauth_needed / refresh_failed events: {bad or 'none'}"),
        (active_at_sandbox, f"stored refresh token active at the sandbox: {active_at_sandbox}"),
        (True, f"scheduled (beat-driven) refresh events: {scheduled}"),
    ]
    return all(ok for ok, _ in checks), [("ok   " if ok else "FAIL ") + text for ok, text in checks]


def start_worker(procs: h.Processes):
    # As the Procfile runs it; restarts append to the same log.
    return procs.start(h.celery_argv("worker", "--concurrency", "2"), log_name="worker.log")


def soak(procs: h.Processes, pk: int, rotations: int) -> None:
    """Watch the rotations; restart the worker at 1/3 and 2/3. Bounded by rotations x 60 s."""
    worker = start_worker(procs)
    beat = procs.start(h.celery_argv("beat"), log_name="beat.log")
    restart_at = sorted({max(1, rotations // 3), max(1, 2 * rotations // 3)})
    restarts = 0
    started = last_at = time.monotonic()
    deadline = started + rotations * 60
    seen = snapshot(pk)["refresh_count"]
    while seen < rotations and time.monotonic() < deadline:
        time.sleep(POLL)
        for name, proc in (("worker", worker), ("beat", beat)):
            if proc.poll() is not None:
                print(f"  the {name} exited with {proc.returncode}")
                return
        row = snapshot(pk)
        if row["refresh_count"] == seen:
            continue
        now = time.monotonic()
        seen = row["refresh_count"]
        print(
            f"  rotation {seen:>4}/{rotations}  status {row['status']:<12} "
            f"{now - last_at:5.1f} s since the last  (t+{now - started:6.0f} s)",
            flush=True,
        )
        last_at = now
        if row["status"] not in ("active", "failing"):
            print(f"  stopped: {row['last_error']}")
            return
        if restarts < len(restart_at) and seen >= restart_at[restarts] and seen < rotations:
            procs.stop(worker)
            worker = start_worker(procs)
            restarts += 1
            print(f"  worker restarted ({restarts}/2): warm shutdown, new pid {worker.pid}")
    if seen < rotations:
        print(f"  timed out after {time.monotonic() - started:.0f} s at {seen} rotations")
    print(f"  worker restarts: {restarts}; elapsed {time.monotonic() - started:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rotations", type=int, default=60)
    rotations = max(1, min(parser.parse_args().rotations, MAX_ROTATIONS))
    h.exit_on_sigterm()
    with h.scratch_dir("portal-soak-") as var_dir:
        port = h.free_port()
        base = f"http://{h.HOST}:{port}"
        env = h.environment(
            var_dir,
            SANDBOX_ENABLED="true",
            PORTAL_BASE_URL=base,
            CELERY_BROKER_URL="filesystem://",
            REFRESH_BEAT_SECONDS=str(BEAT_SECONDS),
            LOG_LEVEL="INFO",
        )
        passed = False
        with h.Processes(env, log_dir=var_dir) as procs:
            h.manage(env, "migrate", "--noinput")
            server = procs.start(h.gunicorn_argv(port, workers=1, threads=4), log_name="web.log")
            h.wait_ready(base, server)
            # The demo data (admin with a published password) is made only with DEBUG on.
            h.manage({**env, "DEBUG": "true"}, "demo")
            django_setup(env)
            conn = demo_connection()
            print(
                f"Soak: connection {conn.pk} ({conn}), access tokens of {ACCESS_LIFETIME} s, "
                f"beat every {BEAT_SECONDS} s, {rotations} rotations, SQLite, filesystem broker"
            )
            try:
                soak(procs, conn.pk, rotations)
                passed, lines = verdict(conn.pk, rotations)
                print("\n".join(f"  {line}" for line in lines))
            finally:
                if not passed:
                    for name in ("worker.log", "beat.log", "web.log"):
                        print(h.log_tail(var_dir, name), file=sys.stderr)
        print("PASS" if passed else "FAIL")
        return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
