"""Exactly one celery beat sends the schedule; a second waits and takes over when it dies.

Every beat is a real `celery -A portal beat` subprocess with its own log and schedule file,
sending to the filesystem broker in its VAR_DIR (nothing consumes it: we only read the logs).
"""

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.support.waiting import wait_for
from tests.support.worker import start_celery

pytestmark = pytest.mark.worker

SENT = "Scheduler: Sending due task heartbeat (portal.tasks.heartbeat)"
TICKED = "beat: Waking up in"
FAST = {"BEAT_HEARTBEAT_SECONDS": "1", "BEAT_LOCK_TTL": "6", "CELERY_BROKER_URL": "filesystem://"}


def start_beat(
    var_dir: Path, name: str, loglevel: str = "INFO", **env: str
) -> tuple[subprocess.Popen, Path]:
    var_dir.mkdir(exist_ok=True)
    log = var_dir / f"{name}.log"
    proc = start_celery(
        "beat",
        "--loglevel",
        loglevel,
        "--schedule",
        str(var_dir / f"{name}-schedule"),
        log_path=log,
        env={**os.environ, **FAST, "VAR_DIR": str(var_dir), **env},
    )
    return proc, log


def sends(log: Path) -> int:
    return log.read_text(errors="replace").count(SENT)


def ticks(log: Path) -> int:
    """Scheduler ticks that ended in a wait (logged at DEBUG): a beat without the lock
    logs its state once, then one of these per attempt to confirm the lock."""
    return log.read_text(errors="replace").count(TICKED)


def kill(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_default_one_beat_sends_and_the_standby_takes_over_when_it_dies(tmp_path):
    # No REDIS_URL, whatever this run uses: the flock on VAR_DIR/beat.lock, shared by both.
    first, first_log = start_beat(tmp_path, "first", REDIS_URL="")
    second = None
    try:
        wait_for(lambda: sends(first_log) >= 1, timeout=30)
        second, second_log = start_beat(tmp_path, "second", REDIS_URL="")
        wait_for(lambda: "waiting for the beat lock (held by" in second_log.read_text(), timeout=30)
        seen = sends(first_log)
        wait_for(lambda: sends(first_log) >= seen + 3, timeout=30)
        assert sends(second_log) == 0

        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        wait_for(lambda: sends(second_log) >= 2, timeout=30)
        assert "holding the beat lock" in second_log.read_text()
    finally:
        kill(first)
        kill(second)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_with_redis_down_no_beat_sends_then_exactly_one_does_and_the_standby_takes_over(tmp_path):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    first, first_log = start_beat(tmp_path / "a", "first", loglevel="DEBUG", REDIS_URL=url)
    second = server = None
    try:
        # Redis is not running yet: the beat starts, cannot confirm the lock, sends nothing.
        wait_for(lambda: "Redis unavailable" in first_log.read_text(), timeout=30)
        # Three more failed attempts, each a heartbeat period in which a fail-open beat
        # would have sent.
        seen = ticks(first_log)
        wait_for(lambda: ticks(first_log) >= seen + 3, timeout=30)
        assert first.poll() is None
        assert sends(first_log) == 0

        with open(tmp_path / "redis.log", "ab") as out:
            server = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis.from_url(url, socket_timeout=1)

        def up():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_for(up, timeout=20)
        second, second_log = start_beat(tmp_path / "b", "second", REDIS_URL=url)
        logs = {first: first_log, second: second_log}
        # Whichever got the lock sends; over the window, never both.
        wait_for(lambda: sum(sends(log) for log in logs.values()) >= 5, timeout=40)
        senders = [proc for proc, log in logs.items() if sends(log)]
        assert len(senders) == 1
        [holder] = senders
        [standby] = [proc for proc in logs if proc is not holder]
        wait_for(
            lambda: "waiting for the beat lock (held by" in logs[standby].read_text(), timeout=10
        )

        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        # After the key expires (BEAT_LOCK_TTL, 6 s here) the standby takes it.
        wait_for(lambda: sends(logs[standby]) >= 2, timeout=30)
        assert standby.poll() is None
    finally:
        kill(first)
        kill(second)
        kill(server)
