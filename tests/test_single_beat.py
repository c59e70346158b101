"""Exactly one celery beat: a second one exits at start with a message."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings

from portal.single_beat import KEY
from tests.support.worker import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.worker


def start_beat(tmp_path, name: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(tmp_path / f"{name}-schedule"),
        ],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
