"""Sending alerts: to whom, once per condition, and the weekly digest of lapsing tokens.

An alert is a side effect of a committed change (queued by connections.notify, after
the lease), sent by a task. Each names its condition with a key ("reauth:<id>:<version>",
"credentials:<app>:<time>", "digest:<tenant>:<week>"); the key is claimed in the Notice table
before the mail leaves, so a retried task, a repeated tick or a second worker never sends the
same condition twice.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from connections.listing import lapsing_q
from connections.models import Connection, Notice
from portal.models import Membership, Tenant

log = logging.getLogger(__name__)
#: the roles told about a tenant's connections: admins fix them, ops watch them
TOLD_ROLES = (Membership.Role.ADMIN, Membership.Role.OPS)
DIGEST_ROWS = 50


#: the profile switch each kind of alert honours (portal.models.Profile)
REAUTH, DIGEST = "notify_reauth", "notify_digest"


def recipients(tenant: Tenant, *, owner_id: int | None = None, wants: str = REAUTH) -> list[str]:
    """Admins and ops who did not turn this kind of alert off, and the connection's owner
    (always: it is theirs). Only confirmed addresses: User.email is set by an invitation or a
    confirmation link, never typed in unchecked."""
    people = Membership.objects.filter(tenant=tenant, role__in=TOLD_ROLES)
    people = people.exclude(**{f"user__profile__{wants}": False})
    emails = list(people.exclude(user__email="").values_list("user__email", flat=True))
    if owner_id:
        owner = (
            Membership.objects.filter(tenant=tenant, user_id=owner_id)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
            .first()
        )
        if owner:
            emails.append(owner)
    return sorted(set(emails))


def _claim(key: str, tenant: Tenant, subject: str) -> Notice | None:
    try:
        with transaction.atomic():
            return Notice.objects.create(key=key[:200], tenant=tenant, subject=subject[:255])
    except IntegrityError:
        return None


def send(
    *,
    tenant_id: int,
    subject: str,
    body: str,
    path: str = "",
    key: str = "",
    owner_id: int | None = None,
    wants: str = REAUTH,
) -> int:
    """Send now (a task's body); the number of recipients, 0 when already sent or nobody to
    tell. A mail server that fails releases the claim, so a retry can send it."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    emails = recipients(tenant, owner_id=owner_id, wants=wants)
    if not emails:
        return 0
    notice = _claim(key, tenant, subject) if key else None
    if key and notice is None:
        log.info("alert %s was sent already", key)
        return 0
    link = f"\n\n{settings.PORTAL_BASE_URL}{path}" if path else ""
    try:
        send_mail(f"[{tenant.name}] {subject}", body + link, None, emails)
    except Exception:
        if notice is not None:
            notice.delete()
        raise
    if notice is not None:
        Notice.objects.filter(pk=notice.pk).update(recipients=len(emails))
    return len(emails)


def _week(now: datetime) -> str:
    year, week, _ = timezone.localtime(now).isocalendar()
    return f"{year}-W{week:02d}"


def send_expiry_digests(*, now: datetime | None = None) -> int:
    """Once per ISO week and tenant: refresh tokens ending within DIGEST_LAPSING_DAYS. Run
    hourly; the week's key makes every run after the first a no-op. Digests sent."""
    now = now or timezone.now()
    days = settings.DIGEST_LAPSING_DAYS
    sent = 0
    for tenant in Tenant.objects.all():
        lapsing = Connection.objects.filter(tenant=tenant).filter(lapsing_q(now, days))
        total = lapsing.count()
        key = f"digest:{tenant.pk}:{_week(now)}"
        if not total or Notice.objects.filter(key=key).exists():
            continue
        lines = [
            f"- #{c.pk} {c.app.name} · {c.account_name or c.account_id or 'no account'} · "
            f"refresh token ends {timezone.localtime(c.refresh_expires_at):%Y-%m-%d %H:%M %Z}"
            for c in lapsing.select_related("app").order_by("refresh_expires_at", "id")[
                :DIGEST_ROWS
            ]
        ]
        more = f"\n… and {total - DIGEST_ROWS} more." if total > DIGEST_ROWS else ""
        report = reverse("expiry_report", args=[tenant.slug])
        body = (
            f"{total} connection{'s' if total != 1 else ''} of {tenant.name} "
            f"{'have' if total != 1 else 'has'} a refresh token ending within {days} days. "
            "Reconnect them before then, or the services using them stop getting tokens.\n\n"
            + "\n".join(lines)
            + more
        )
        subject = f"Weekly digest: {total} refresh token{'s' if total != 1 else ''} ending soon"
        if send(
            tenant_id=tenant.pk,
            subject=subject,
            body=body,
            path=f"{report}?attention=lapsing&within={days}&sort=refresh_expires#table",
            key=key,
            wants=DIGEST,
        ):
            sent += 1
    return sent
