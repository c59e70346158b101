"""Telling a tenant's people when one of them has to act: queued here, sent by connections.alerts.

Notices are side effects: they leave only after the state they describe is committed, from a
task, never while a lease is held or a request waits on SMTP (EMAIL_TIMEOUT bounds the task).
"""

import logging
import threading
from contextlib import contextmanager

from django.db import transaction
from django.urls import reverse

log = logging.getLogger(__name__)
_held = threading.local()


@contextmanager
def after_lease():
    """Notices raised inside the block are queued when it ends: a refresh wraps its lease in
    it, so nothing leaves while the lease is held."""
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


def tell(
    *, tenant, key: str, subject: str, body: str, path: str = "", owner_id: int | None = None
) -> None:
    """Queue an alert to the tenant's admins and ops (and the connection's owner) once the
    current transaction commits (and the enclosing after_lease block, if any, has ended).
    `key` names the condition: connections.alerts sends each key once."""

    def queue():
        from connections.tasks import send_alert

        try:
            send_alert.delay(tenant.pk, subject, body, path, key, owner_id)
        except Exception:  # noqa: BLE001 - a broker hiccup must never undo a stored token
            log.exception("could not queue an alert for %s", tenant.slug)

    held = getattr(_held, "queue", None)
    if held is not None:
        held.append(queue)
    else:
        transaction.on_commit(queue)


def connection_path(conn) -> str:
    try:
        return reverse("connection_detail", args=[conn.tenant.slug, conn.pk])
    except Exception:  # noqa: BLE001 - the page may not be routed in every deployment
        return ""
