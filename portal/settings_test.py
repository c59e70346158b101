"""Test settings: the development defaults (a generated field key, the sandbox on).

Set through the environment so worker subprocesses started by the tests inherit them.
"""

import os

os.environ.setdefault("DEBUG", "true")
# Playwright drives the live server from the test thread's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from portal.settings import *  # noqa: E402, F403

# Every test makes people with passwords: the production hasher's 1,000,000 PBKDF2 rounds cost
# a quarter of a second each, several times per test. (Hashing itself is Django's, not ours.)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",  # the sandbox's own, cheaper, hashes
]
