"""Telling a tenant's admins when a person has to act."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from portal.models import Membership

log = logging.getLogger(__name__)


def tell_admins(*, tenant, subject: str, body: str, path: str = "") -> None:
    emails = list(
        Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not emails:
        return
    link = f"\n\n{settings.PORTAL_BASE_URL}{path}" if path else ""
    try:
        send_mail(f"[{tenant.name}] {subject}", body + link, None, emails)
    except Exception:  # noqa: BLE001 - mail trouble must never undo a stored token
        log.exception("could not e-mail the admins of %s", tenant.slug)


def connection_path(conn) -> str:
    try:
        return reverse("connection_detail", args=[conn.tenant.slug, conn.pk])
    except Exception:  # noqa: BLE001 - the page may not be routed in every deployment
        return ""
