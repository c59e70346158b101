"""What the on-demand scripts in benchmarks/ share: a throwaway VAR_DIR, the environment the
portal runs with there, `manage.py` steps, and the server / worker / beat subprocesses, each
in its own process group so that stopping one stops its children too.

Everything listens on 127.0.0.1 only. Not imported by the portal or the tests.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only, by design
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def environment(var_dir: str, **overrides: str) -> dict:
    """The portal's environment for one run: production-like (DEBUG off, fresh keys), its
    state in var_dir, nothing inherited that points at a shared database or broker unless an
    override says so."""
    inherited = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PORTAL_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        VAR_DIR=var_dir,
        DEBUG="false",  # DEBUG on records every query and would flatter nobody
        SECRET_KEY=Fernet.generate_key().decode(),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS=HOST,
        SANDBOX_ENABLED="false",
        CONN_MAX_AGE="600",  # persistent DB connections, as in production
        LOG_LEVEL="WARNING",
        # Served over plain http on loopback: no redirect to https, cookies sent over http.
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        CELERY_BROKER_URL="memory://",
    )
    env.update(overrides)
    return env


@contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A temporary VAR_DIR, removed afterwards whatever happened."""
    var_dir = tempfile.mkdtemp(prefix=prefix)
    try:
        yield var_dir
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks stop the subprocesses and remove the
    temp dir when the script itself is terminated (Ctrl-C already raises)."""

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def manage(env: dict, *args: str, timeout: float = 300) -> str:
    """Run one `manage.py` command to completion; its stdout. A failure exits with the
    command's stderr, which a bare CalledProcessError would hide."""
    # Fixed argument lists built here, never from outside input.
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def wait_ready(base: str, server: subprocess.Popen, path: str = "/login/") -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if requests.get(f"{base}{path}", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still loading
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {READY_TIMEOUT:.0f} s")


def gunicorn_argv(port: int, *, workers: int, threads: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "portal.wsgi:application",
        "--bind",
        f"{HOST}:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]


def celery_argv(role: str, *extra: str) -> list[str]:
    """`celery -A portal worker|beat`, as the Procfile runs them."""
    return [sys.executable, "-m", "celery", "-A", "portal", role, "--loglevel", "INFO", *extra]


class Processes:
    """The subprocesses of one run. Each gets its own session (process group), so a stop
    reaches gunicorn's workers, and a celery worker stops its pool children itself (they sit
    in groups of their own; a SIGKILL reaches them by session); leaving the `with` block
    stops whatever is still running, newest first, even after an error."""

    def __init__(self, env: dict, log_dir: str | None = None):
        self.env = env
        self.log_dir = log_dir
        self.running: list[subprocess.Popen] = []
        self._logs: dict[int, object] = {}

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)

    def start(self, argv: list[str], *, log_name: str | None = None) -> subprocess.Popen:
        """Start argv (a fixed list); its output goes to log_name in log_dir, or is inherited."""
        log = None
        if log_name and self.log_dir:
            log = open(Path(self.log_dir) / log_name, "ab")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(  # noqa: S603 (fixed arguments)
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,
        )
        self.running.append(proc)
        if log:
            self._logs[proc.pid] = log
        return proc

    def stop(self, proc: subprocess.Popen, *, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the group (a celery worker finishes its running tasks: a warm
        shutdown), SIGKILL if it is still there after timeout."""
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Prefork children sit in process groups of their own (group_pids).
                for pid in group_pids(proc):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self._signal(proc, signal.SIGKILL)
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)
        log = self._logs.pop(proc.pid, None)
        if log:
            log.close()

    @staticmethod
    def _signal(proc: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass


def group_pids(proc: subprocess.Popen) -> list[int]:
    """The live processes of proc's session, from /proc: proc itself and its children (a
    celery worker's pool, gunicorn's workers). Processes.start gives each its own session;
    the session, not the process group, because celery's prefork children each move into a
    process group of their own (billiard calls setpgrp), and stay in the session."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        # After the command name: state ppid pgrp session ...
        if proc.pid in (int(fields[2]), int(fields[3])):
            pids.append(int(stat.parent.name))
    return pids


def group_cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU seconds of every live process in proc's session (a celery worker and
    its pool children, gunicorn and its workers), read from /proc (group_pids). A child that
    exited meanwhile takes its CPU seconds with it."""
    total = 0
    for pid in group_pids(proc):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state ppid pgrp ... utime (11th) stime (12th).
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def group_memory_kib(proc: subprocess.Popen, *, pss: bool = False) -> dict[str, int]:
    """Resident memory of proc's session (group_pids), in KiB: `rss` the sum of each process's VmRSS
    now, `hwm` the sum of each one's VmHWM (its own peak so far), from /proc/<pid>/status;
    `processes` how many; with pss, `pss` the sum of /proc/<pid>/smaps_rollup's Pss (pages
    shared by a prefork parent and its children counted once overall, not once each)."""
    found = {"rss": 0, "hwm": 0, "processes": 0, "pss": 0}
    for pid in group_pids(proc):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text() if pss else ""
        except OSError:
            continue
        values = {}
        for line in (status + rollup).splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Pss") and rest.split():
                values[key] = int(rest.split()[0])
        found["rss"] += values.get("VmRSS", 0)
        found["hwm"] += values.get("VmHWM", 0)
        found["pss"] += values.get("Pss", 0)
        found["processes"] += 1
    return found


def log_tail(log_dir: str, name: str, lines: int = 30) -> str:
    """The end of a subprocess log, to print on failure before the temp dir goes."""
    path = Path(log_dir) / name
    if not path.exists():
        return f"({name}: no log)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {name} ---\n" + "\n".join(text)
