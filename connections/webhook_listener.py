"""An app's listener: where its deliveries go, which events it hears, and the secrets they
are signed with (Standard Webhooks: "whsec_" and base64, a "v1,<base64>" signature each).

A signing secret is shown once, when it is made. Rotating makes a new one and leaves the
previous one signing too for WEBHOOK_SECRET_OVERLAP_HOURS: every delivery carries both
signatures, so a listener can switch secrets whenever it likes within the overlap.
"""

import base64
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from connections import audit
from connections.models import AuditEvent, PrivateApp, SigningSecret

LISTENER_FIELDS = ("listener_url", "listener_sync", "listener_events", "lapse_warning_days")


def shown_url(url: str) -> str:
    """The listener URL for messages and the audit trail: without its query, which may carry
    the tenant's own token."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def new_secret_value() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@transaction.atomic
def configure(*, app: PrivateApp, actor, **fields) -> str | None:
    """Save the listener settings; the app's first signing secret when this gives it one
    (to be shown once), else None."""
    app = PrivateApp.objects.select_for_update().get(pk=app.pk)
    changed = [name for name in LISTENER_FIELDS if getattr(app, name) != fields[name]]
    for name in LISTENER_FIELDS:
        setattr(app, name, fields[name])
    app.save(update_fields=[*LISTENER_FIELDS, "updated_at"])
    if changed:
        audit.record(
            AuditEvent.Kind.WEBHOOK_LISTENER_CHANGED,
            tenant=app.tenant,
            app=app,
            actor=actor,
            message=f"{app.name}: listener "
            + (f"set to {shown_url(app.listener_url)}" if app.listener_url else "removed")
            + f" ({', '.join(changed)} changed).",
        )
    if app.listener_url and not app.signing_secrets.exists():
        return _new_secret(app, now=timezone.now())
    return None


def _new_secret(app: PrivateApp, *, now) -> str:
    value = new_secret_value()
    SigningSecret.objects.create(app=app, value=value, last_four=value[-4:], created_at=now)
    return value


@transaction.atomic
def rotate_secret(*, app: PrivateApp, actor) -> str:
    """A new signing secret, returned once; the current ones keep signing until the overlap
    ends."""
    now = timezone.now()
    app = PrivateApp.objects.select_for_update().get(pk=app.pk)
    overlap = now + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    had = app.signing_secrets.filter(expires_at__isnull=True).update(expires_at=overlap)
    value = _new_secret(app, now=now)
    audit.record(
        AuditEvent.Kind.WEBHOOK_SECRET_ROTATED,
        tenant=app.tenant,
        app=app,
        actor=actor,
        message=f"{app.name}: new signing secret"
        + (f"; the previous one signs too until {overlap:%Y-%m-%d %H:%M} UTC." if had else "."),
    )
    return value


def current_secrets(app: PrivateApp, *, now=None):
    """The secrets that sign now, newest first."""
    now = now or timezone.now()
    return app.signing_secrets.exclude(expires_at__lte=now).order_by("-created_at", "-id")


def signing_values(app: PrivateApp) -> list[str]:
    return [s.value for s in current_secrets(app)]


def sign(values: list[str], message_id: str, stamp: int, body: str) -> str:
    """The webhook-signature header: one "v1,<base64>" per current secret, newest first."""
    when = datetime.fromtimestamp(stamp, tz=UTC)
    return " ".join(Webhook(v).sign(message_id, when, body) for v in values)
