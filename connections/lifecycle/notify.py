"""Telling a tenant's admins when a person has to act.

Notices are side effects: they leave only after the state they describe is committed, from a
task, never while a lease is held or a request waits on SMTP (EMAIL_TIMEOUT bounds the task).
"""

import logging
import threading
from contextlib import contextmanager

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from portal.models import Membership, Tenant

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


def tell_admins(*, tenant, subject: str, body: str, path: str = "") -> None:
    """Queue a notice to the tenant's admins once the current transaction commits (and the
    enclosing after_lease block, if any, has ended)."""

    def queue():
        from connections.tasks import send_admin_notice

        try:
            send_admin_notice.delay(tenant.pk, subject, body, path)
        except Exception:  # noqa: BLE001 - a broker hiccup must never undo a stored token
            log.exception("could not queue a notice for the admins of %s", tenant.slug)

    held = getattr(_held, "queue", None)
    if held is not None:
        held.append(queue)
    else:
        transaction.on_commit(queue)


def send_notice(*, tenant_id: int, subject: str, body: str, path: str = "") -> int:
    """Send it now (the task's body); the number of recipients."""
    tenant = Tenant.objects.get(pk=tenant_id)
    emails = list(
        Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not emails:
        return 0
    link = f"\n\n{settings.PORTAL_BASE_URL}{path}" if path else ""
    send_mail(f"[{tenant.name}] {subject}", body + link, None, emails)
    return len(emails)


def connection_path(conn) -> str:
    try:
        return reverse("connection_detail", args=[conn.tenant.slug, conn.pk])
    except Exception:  # noqa: BLE001 - the page may not be routed in every deployment
        return ""
