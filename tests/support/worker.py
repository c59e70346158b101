"""A real Celery worker in a subprocess, pointed at the test database and the test broker."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    auth = f"{user}:{db.get('PASSWORD') or ''}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def start_celery(*args: str, log_path: Path, env: dict) -> subprocess.Popen:
    """`celery -A portal <args>` in its own process group, output appended to log_path."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextmanager
def celery_worker(
    *,
    concurrency: int = 1,
    extra_env: dict | None = None,
    pool: str = "prefork",
    queues: str = "celery,webhooks",
) -> Iterator[subprocess.Popen]:
    """A worker of `pool` (the webhook worker is `pool="threads", queues="webhooks"`)."""
    env = {**os.environ, "DATABASE_URL": test_database_url(), **(extra_env or {})}
    proc = start_celery(
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--queues",
        queues,
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        log_path=Path(settings.VAR_DIR) / "test-worker.log",
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
