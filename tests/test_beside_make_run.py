"""`make test` beside a running `make run` in the same checkout (issue 14).

They shared var/: each worker ran the other's tasks from the one broker folder, and the tests'
heartbeats landed in the demo's database. The test settings now keep the suite's files in
var/test (portal/settings_test.py), and leave a Redis named only in .env to the demo.
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from portal.models import Heartbeat
from portal.tasks import heartbeat
from tests.support.waiting import wait_for
from tests.support.worker import celery_worker

ROOT = Path(__file__).resolve().parent.parent
# What the suite's own run sets or inherits that the settings read: not `make run`'s.
SUITE_ONLY = {
    "VAR_DIR",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "PROMETHEUS_MULTIPROC_DIR",  # set by connections.metrics on import, to the suite's
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DEBUG",
    "FIELD_ENCRYPTION_KEYS",
}
PATHS = """
import json, django; django.setup()
from django.conf import settings as s
from connections.lifecycle.spool import _folder
db = s.DATABASES["default"]
print(json.dumps({
    "var": str(s.VAR_DIR),
    "database": str(db["NAME"]),
    "test database": str(db.get("TEST", {}).get("NAME") or "test_" + str(db["NAME"])),
    "broker": s.CELERY_BROKER_URL,
    "broker folder": str(s.BROKER_DIR),
    "cache": s.CACHES["default"]["LOCATION"],
    "spool": str(_folder()),
    "metrics": str(s.PROMETHEUS_MULTIPROC_DIR),
    "beat schedule": s.CELERY_BEAT_SCHEDULE_FILENAME,
}))
"""


def make_run_env(**overrides: str) -> dict[str, str]:
    """The environment `make run` gives its processes, in a shell without the suite's."""
    env = {k: v for k, v in os.environ.items() if k not in SUITE_ONLY}
    env["DEBUG"] = "true"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def settings_paths(env: dict[str, str]) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", PATHS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_make_test_and_make_run_defaults_share_no_file():
    # Both with VAR_DIR unset, as from a fresh shell; the demo's settings with a field key
    # given, so that none is written to the checkout's var/.
    suite = settings_paths(make_run_env(DJANGO_SETTINGS_MODULE="portal.settings_test"))
    demo = settings_paths(
        make_run_env(
            DJANGO_SETTINGS_MODULE="portal.settings",
            FIELD_ENCRYPTION_KEYS="t2sCq3Bj5Ckq1nFhk4r1lq2kPZ2z7qM8xv9cW0dYl3E=",
        )
    )
    assert Path(suite["var"]) == ROOT / "var" / "test"
    assert Path(demo["var"]) == ROOT / "var"
    # (A REDIS_URL in .env is the demo's alone: the next test.)
    assert suite["broker"] == "filesystem://"
    for key in ("broker folder", "cache", "spool", "metrics", "beat schedule"):
        assert suite[key] != demo[key], key
    assert suite["test database"] != demo["database"]


DOTENV_REDIS = """
import os, environ
def read_env(cls, *args, **kwargs):  # a .env in the checkout, as environ.Env reads one
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
environ.Env.read_env = classmethod(read_env)
import django; django.setup()
from django.conf import settings as s
print(repr(s.REDIS_URL), s.CELERY_BROKER_URL, s.CACHES["default"]["BACKEND"].rsplit(".", 1)[1])
"""


@pytest.mark.parametrize(
    ("exported", "expected"),
    [
        ({}, "'' filesystem:// FileBasedCache"),
        (
            {"REDIS_URL": "redis://127.0.0.1:6379/1"},
            "'redis://127.0.0.1:6379/1' redis://127.0.0.1:6379/1 RedisCache",
        ),
    ],
    ids=["only in .env", "exported, as .ci/run does"],
)
def test_the_tests_use_a_redis_only_when_their_environment_names_it(exported, expected):
    env = {
        **{k: v for k, v in os.environ.items() if k not in SUITE_ONLY},
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        **exported,
    }
    result = subprocess.run(
        [sys.executable, "-c", DOTENV_REDIS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


# --- the demo's processes running beside the suite's worker ---------------------------------

RECEIVED = re.compile(r"Task portal\.tasks\.heartbeat\[([0-9a-f-]+)\] received")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def heartbeats(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=20) as db:
        try:
            return dict(db.execute("SELECT name, count FROM portal_heartbeat"))
        except sqlite3.OperationalError:  # not migrated yet
            return {}


def processes_in(var_dir: Path) -> list[int]:
    """Our own processes whose environment names var_dir: the demo's, whatever group."""
    marker = f"VAR_DIR={var_dir}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes in /proc")
def test_the_suite_s_worker_and_a_running_make_run_keep_their_tasks_and_rows_apart(tmp_path):
    # `make run` as it runs in this checkout: its Procfile through its process manager, its
    # defaults (SQLite and the filesystem broker under its var/). The checkout's own var/ is
    # the developer's demo, so a stand-in of it; the defaults are spelled out, so that a .env
    # in the checkout (honcho's and the settings') cannot point this demo at a real one.
    demo_var = tmp_path / "var"
    demo_db = demo_var / "portal.sqlite3"
    env = make_run_env(
        VAR_DIR=str(demo_var),
        DATABASE_URL=f"sqlite:///{demo_db}",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        WEB_PORT=str(free_port()),
        BEAT_HEARTBEAT_SECONDS="1",
    )
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "make-run.log"
    with open(log, "ab") as out:
        honcho = subprocess.Popen(
            [sys.executable, "-m", "portal.procfile", "start", "--env", str(tmp_path / "no.env")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    suite_log = Path(settings.VAR_DIR) / "test-worker.log"
    try:
        # The demo's beat sends, its worker runs them into the demo's database.
        wait_for(lambda: heartbeats(demo_db).get("beat", 0) >= 2, timeout=90)

        name = f"suite-{uuid.uuid4().hex[:8]}"
        with celery_worker():
            ids = [heartbeat.delay(name=name).id for _ in range(3)]
            wait_for(lambda: Heartbeat.objects.filter(name=name, count=3).exists(), timeout=60)
            # ... and the demo's worker went on with its own meanwhile.
            seen = heartbeats(demo_db)["beat"]
            wait_for(lambda: heartbeats(demo_db)["beat"] >= seen + 2, timeout=30)

        demo_ran = set(RECEIVED.findall(log.read_text(errors="replace")))
        suite_ran = set(RECEIVED.findall(suite_log.read_text(errors="replace")))
        assert set(ids) <= suite_ran
        assert demo_ran and not demo_ran & set(ids)
        assert not demo_ran & suite_ran
        assert name not in heartbeats(demo_db)
        assert not Heartbeat.objects.filter(name="beat").exists()

        # Ctrl-C: the three stop by themselves, the worker after a warm shutdown.
        honcho.send_signal(signal.SIGINT)
        honcho.wait(timeout=60)
        stopped = log.read_text(errors="replace")
        assert "SIGKILL" not in stopped, stopped
        assert "worker.1 stopped (rc=0)" in stopped, stopped
        assert "beat.1 stopped (rc=0)" in stopped, stopped
        assert "webhooks.1 stopped (rc=0)" in stopped, stopped
        assert "exited with 'signal" not in stopped, stopped  # no pool process killed
        wait_for(lambda: not processes_in(demo_var), timeout=15)
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(timeout=10)
        for pid in processes_in(demo_var):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
