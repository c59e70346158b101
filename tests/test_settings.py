import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_django(**env_overrides) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


KEY = "t2sCq3Bj5Ckq1nFhk4r1lq2kPZ2z7qM8xv9cW0dYl3E="


def test_production_refuses_the_default_secret_key():
    result = run_django(DEBUG="false", FIELD_ENCRYPTION_KEYS=KEY)
    assert result.returncode != 0
    assert "default SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_encryption_keys():
    result = run_django(DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "no FIELD_ENCRYPTION_KEYS" in result.stderr


def test_a_malformed_encryption_key_is_refused_with_a_hint():
    result = run_django(DEBUG="false", SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEYS="not-a-key")
    assert result.returncode != 0
    assert "generate_field_key" in result.stderr


def test_production_starts_with_a_real_secret_and_keys():
    result = run_django(DEBUG="false", SECRET_KEY="x" * 50, FIELD_ENCRYPTION_KEYS=KEY)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_the_embedded_broker_keeps_its_files_in_var_dir_and_polls_promptly(tmp_path):
    # kombu's defaults write exchange tables to ./control (the checkout, shared by every run)
    # and wait 1 s before looking again, which capped a worker at `concurrency` tasks/s.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "o = s.CELERY_BROKER_TRANSPORT_OPTIONS; "
            "print(o['control_folder']); print(o['polling_interval'])",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "true",
            "VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    control, interval = result.stdout.split()
    assert Path(control).is_relative_to(tmp_path)
    assert float(interval) <= 0.1
