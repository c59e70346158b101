"""Test settings: the development defaults (a generated field key, the sandbox on).

Set through the environment so worker subprocesses started by the tests inherit them.
"""

import os
from pathlib import Path

os.environ.setdefault("DEBUG", "true")
# Playwright drives the live server from the test thread's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The tests keep their own files, so they can run beside `make run` in the same checkout: the
# SQLite databases, the broker folder, cache, spool, metrics and beat schedule go to var/test,
# not var/ (unless VAR_DIR is given, as .ci/run does).
os.environ.setdefault("VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(os.environ["VAR_DIR"]) / "metrics"))
# Redis only when the test run's own environment names one (.ci/run exports REDIS_URL, a
# database it flushes). A REDIS_URL or CELERY_BROKER_URL in .env is the checkout's portal's:
# read by the tests, its queue, spool, beat lock and rate-limit keys would be shared with the
# demo's worker. An empty value is unset, and the settings do not read .env over it.
os.environ.setdefault("REDIS_URL", "")
os.environ.setdefault("CELERY_BROKER_URL", "")

from portal.settings import *  # noqa: E402, F403

# Every test makes people with passwords: the production hasher's 1,000,000 PBKDF2 rounds cost
# a quarter of a second each, several times per test. (Hashing itself is Django's, not ours.)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",  # the sandbox's own, cheaper, hashes
]
