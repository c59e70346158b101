"""Side effects (alerts, webhook deliveries) leave only after the state they describe is
committed, and never while a lease is held: a refresh wraps its lease in after_lease(), and
whatever is queued inside the block is handed to on_commit when the block ends."""

import threading
from contextlib import contextmanager

from django.db import transaction

_held = threading.local()


@contextmanager
def after_lease():
    outer = getattr(_held, "queue", None)
    if outer is not None:  # already inside one: the outermost block queues
        yield
        return
    _held.queue = []
    try:
        yield
    finally:
        queued, _held.queue = _held.queue, None
        for queue in queued:
            transaction.on_commit(queue)


def after(side_effect) -> None:
    """Run `side_effect` once the current transaction commits and the enclosing after_lease
    block, if any, has ended."""
    held = getattr(_held, "queue", None)
    if held is not None:
        held.append(side_effect)
    else:
        transaction.on_commit(side_effect)
