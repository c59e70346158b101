"""Test settings: the development defaults (a generated field key, the sandbox on).

Set through the environment so worker subprocesses started by the tests inherit them.
"""

import os

os.environ.setdefault("DEBUG", "true")
# Playwright drives the live server from the test thread's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from portal.settings import *  # noqa: E402, F403
