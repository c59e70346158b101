"""Telling a tenant's people when one of them has to act: queued here, sent by connections.alerts.

Notices are side effects (connections.side_effects): they leave only after the state they
describe is committed, from a task, never while a lease is held or a request waits on SMTP
(EMAIL_TIMEOUT bounds the task).
"""

import logging

from django.urls import reverse

from connections.side_effects import after

log = logging.getLogger(__name__)


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

    after(queue)


def connection_path(conn) -> str:
    try:
        return reverse("connection_detail", args=[conn.tenant.slug, conn.pk])
    except Exception:  # noqa: BLE001 - the page may not be routed in every deployment
        return ""
