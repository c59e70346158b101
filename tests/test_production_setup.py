"""DEBUG off: the sandbox is neither installed nor routed unless opted into (and then warned
about), the demo data refuses to be made, and a field key can be made before any is set."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import CommandError, call_command
from django.urls import resolve

from portal.checks import sandbox_in_production

ROOT = Path(__file__).resolve().parent.parent
# Whatever the test run itself was given must not leak into the production-like subprocess.
INHERITED = {
    "DEBUG",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEYS",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SANDBOX_ENABLED",
    "DJANGO_SETTINGS_MODULE",
    "VAR_DIR",
}
WHERE = """
import django; django.setup()
from django.apps import apps
from django.urls import Resolver404, resolve
print("installed" if apps.is_installed("sandbox") else "not installed")
try:
    resolve("/sandbox/manus/oauth/token")
    print("routed")
except Resolver404:
    print("not routed")
"""


def production_env(var_dir: Path, **overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="false",
        SECRET_KEY="production-" + "x" * 50,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'portal.sqlite3'}",
        SANDBOX_ENABLED="false",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return run(env, "manage.py", *args)


# --- the sandbox --------------------------------------------------------------------------


def test_without_debug_the_sandbox_is_not_installed_migrated_or_routed(tmp_path):
    env = production_env(tmp_path)
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(tmp_path / "portal.sqlite3") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    assert "connections_privateapp" in tables
    assert not [t for t in tables if t.startswith("sandbox_")]
    where = run(env, "-c", WHERE)
    assert where.returncode == 0, where.stderr
    assert where.stdout.split("\n")[:2] == ["not installed", "not routed"]
    checked = manage(env, "check")
    assert checked.returncode == 0, checked.stderr
    assert "portal.W001" not in checked.stdout + checked.stderr


def test_the_sandbox_opted_into_without_debug_is_warned_about(tmp_path):
    env = production_env(tmp_path, SANDBOX_ENABLED="true")
    where = run(env, "-c", WHERE)
    assert where.stdout.split("\n")[:2] == ["installed", "routed"], where.stderr
    checked = manage(env, "check")
    assert checked.returncode == 0  # a warning: an explicit opt-in may stand
    report = checked.stdout + checked.stderr
    assert "portal.W001" in report
    assert "unauthenticated fault-control endpoints" in report


def test_debug_keeps_the_sandbox_on():
    # The test settings are development settings (DEBUG=true).
    assert apps.is_installed("sandbox")
    assert resolve("/sandbox/manus/oauth/token").url_name == "token"


def test_the_check_warns_only_for_the_sandbox_without_debug(settings):
    settings.SANDBOX_ENABLED, settings.DEBUG = True, True
    assert sandbox_in_production(None) == []
    settings.SANDBOX_ENABLED, settings.DEBUG = False, False
    assert sandbox_in_production(None) == []
    settings.SANDBOX_ENABLED, settings.DEBUG = True, False
    [warning] = sandbox_in_production(None)
    assert warning.id == "portal.W001" and warning.is_serious() is False


# --- manage.py demo -------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_refuses_without_debug(settings, django_user_model):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("demo")
    assert not django_user_model.objects.filter(username="admin").exists()


def test_manage_py_demo_exits_non_zero_without_debug(tmp_path):
    env = production_env(tmp_path)
    assert manage(env, "migrate", "--noinput").returncode == 0
    result = manage(env, "demo")
    assert result.returncode != 0
    assert "Refusing to create the demo data with DEBUG off" in result.stderr
    assert "Demo ready" not in result.stdout
    with sqlite3.connect(tmp_path / "portal.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM auth_user").fetchone() == (0,)


# --- a field key before any is set ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [("manage.py", "generate_field_key"), ("-m", "portal.keys")],
    ids=["manage.py", "python -m"],
)
def test_a_field_key_is_made_with_debug_off_and_no_keys_set(tmp_path, argv):
    env = production_env(tmp_path, SECRET_KEY=None, FIELD_ENCRYPTION_KEYS=None)
    result = run(env, *argv)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    Fernet(key)  # a valid key
    assert run(env, *argv).stdout.strip() != key


def test_the_portal_still_refuses_to_start_without_keys(tmp_path):
    env = production_env(tmp_path, FIELD_ENCRYPTION_KEYS=None)
    for argv in (("manage.py", "check"), ("manage.py", "runserver", "--noreload")):
        result = run(env, *argv)
        assert result.returncode != 0, argv
        assert "no FIELD_ENCRYPTION_KEYS" in result.stderr, argv
        assert "generate_field_key" in result.stderr, argv
    wsgi = run(env, "-c", "import portal.wsgi")
    assert wsgi.returncode != 0 and "no FIELD_ENCRYPTION_KEYS" in wsgi.stderr


def test_generate_field_key_as_a_django_command(capsys):
    call_command("generate_field_key")
    Fernet(capsys.readouterr().out.strip())
