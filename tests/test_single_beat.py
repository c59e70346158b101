"""Exactly one celery beat: a second one exits at start with a message."""

import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis
from django.conf import settings

from portal.single_beat import KEY
from tests.support.worker import start_celery, wait_for

pytestmark = pytest.mark.worker


def start_beat(tmp_path, name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    # Its own VAR_DIR, so a developer's running beat does not hold the file lock.
    proc = start_celery(
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(tmp_path / f"{name}-schedule"),
        log_path=log,
        env={**os.environ, "VAR_DIR": str(tmp_path)},
    )
    return proc, log


def test_a_second_beat_refuses_to_start(tmp_path):
    first, first_log = start_beat(tmp_path, "first")
    try:
        wait_for(lambda: "beat: Starting" in first_log.read_text(), timeout=60)
        second, second_log = start_beat(tmp_path, "second")
        assert second.wait(timeout=60) == 2
        assert "Another celery beat is running" in second_log.read_text()
        assert first.poll() is None
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=30)
        if settings.REDIS_URL:
            redis.Redis.from_url(settings.REDIS_URL).delete(KEY)
