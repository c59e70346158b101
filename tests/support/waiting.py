"""Waiting for something to happen: poll it against a deadline, never sleep a fixed time."""

import time
from collections.abc import Callable


def wait_for(
    predicate: Callable[[], object], *, timeout: float = 30, every: float = 0.1, message: str = ""
):
    """Poll until predicate() is truthy and return its value; a bounded loop that fails
    loudly (with `message`, if given) when the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(message or f"condition not met within {timeout}s")
