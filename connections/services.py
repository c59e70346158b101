"""Writes to the app registry: apps and their client secrets.

Each function is atomic and records an audit event with the acting user; views only parse input
and check roles. Secret values never reach an event, a message or a log.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connections import audit
from connections.lifecycle import connections_mark_reauth
from connections.models import ClientSecret, PrivateApp
from connections.providers import PkceMode, get_provider

Status = PrivateApp.Status

# Manu Online support enables an app; the portal mirrors that, it cannot un-enable it to pending.
STATUS_MOVES: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.ENABLED, Status.DISABLED}),
    Status.ENABLED: frozenset({Status.DISABLED}),
    Status.DISABLED: frozenset({Status.ENABLED}),
}


class AppInUse(Exception):
    """The app still has connections (Connection.app is PROTECT)."""


@dataclass
class AppUpdate:
    app: PrivateApp
    changed: list[str]
    widened: list[str] = field(default_factory=list)
    invalidated: int = 0


def initial_status(provider_key: str) -> str:
    return Status.PENDING if get_provider(provider_key).starts_pending else Status.ENABLED


# sensitive_variables (outermost, so atomic's frame is covered too): error reports show none
# of the locals of these writes and what they call; fields carry encrypted credentials.
@sensitive_variables()
@transaction.atomic
def app_create(
    *, tenant, actor, fields: dict, client_secret: str = "", secret_label: str = ""
) -> tuple[PrivateApp, ClientSecret | None]:
    provider = get_provider(fields["provider"])
    app = PrivateApp(tenant=tenant, created_by=actor, status=initial_status(provider.key))
    app.grant_type = provider.grants[0]
    app.client_auth = provider.client_auth
    app.pkce_mode = provider.pkce_modes[0]
    for name, value in fields.items():
        setattr(app, name, value)
    app.save()
    audit.record(
        audit.Kind.APP_CREATED,
        tenant=tenant,
        app=app,
        actor=actor,
        message=f"{app.name} ({provider.name}) registered, status {app.status}.",
    )
    secret = None
    if client_secret:
        secret = secret_add(app=app, actor=actor, value=client_secret, label=secret_label)
    return app, secret


def _widened(app: PrivateApp, fields: dict) -> list[str]:
    added = []
    for name in ("scopes", "connector_uids"):
        if name in fields:
            added += [v for v in fields[name] if v not in set(getattr(app, name) or [])]
    return added


@sensitive_variables()
@transaction.atomic
def app_update(*, app: PrivateApp, actor, fields: dict) -> AppUpdate:
    """Save edits; widening scopes on a provider that invalidates tokens flags connections."""
    app = PrivateApp.objects.select_for_update().get(pk=app.pk)
    widened = _widened(app, fields)
    changed = [n for n, v in fields.items() if getattr(app, n) != v]
    for name, value in fields.items():
        setattr(app, name, value)
    app.save()
    # Field names only: some of them are encrypted credentials.
    audit.record(
        audit.Kind.APP_UPDATED, tenant=app.tenant, app=app, actor=actor, changed=sorted(changed)
    )
    result = AppUpdate(app=app, changed=changed, widened=widened)
    if widened and app.catalogue.widening_scopes_invalidates:
        result.invalidated = _invalidate_connections(app=app, actor=actor, added=widened)
    return result


def _invalidate_connections(*, app: PrivateApp, actor, added: list[str]) -> int:
    audit.record(
        audit.Kind.SCOPES_WIDENED,
        tenant=app.tenant,
        app=app,
        actor=actor,
        message=f"Added {', '.join(added)}: {app.catalogue.name} invalidates existing tokens.",
        added=added,
    )
    return connections_mark_reauth(
        app=app,
        why="The app's scopes were widened; the provider invalidated the tokens.",
        actor=actor,
        message="Scopes widened: connect again to grant them.",
    )


@transaction.atomic
def app_set_status(*, app: PrivateApp, actor, status: str) -> PrivateApp:
    app = PrivateApp.objects.select_for_update().get(pk=app.pk)
    if status not in STATUS_MOVES.get(app.status, ()):
        raise ValidationError(
            f"An app that is {app.get_status_display().lower()} cannot become {status}."
        )
    old = app.status
    app.status = status
    app.save(update_fields=["status", "updated_at"])
    audit.record(
        audit.Kind.APP_STATUS,
        tenant=app.tenant,
        app=app,
        actor=actor,
        message=f"{app.name}: {old} → {status}.",
        old=old,
        new=status,
    )
    return app


@transaction.atomic
def app_delete(*, app: PrivateApp, actor) -> None:
    n = app.connections.count()
    if n:
        raise AppInUse(
            f"{app.name} still has {n} connection{'s' if n != 1 else ''}. Disconnect "
            "them first, or disable the app to stop new connections."
        )
    audit.record(
        audit.Kind.APP_DELETED,
        tenant=app.tenant,
        actor=actor,
        message=f"{app.name} ({app.catalogue.name}) deleted.",
        app_id=app.pk,
    )
    app.delete()


def _active(app: PrivateApp):
    return app.client_secrets.filter(revoked_at__isnull=True)


def _lock(app: PrivateApp) -> None:
    # Secret changes of one app take turns, so two revokes cannot leave it with none.
    PrivateApp.objects.select_for_update().filter(pk=app.pk).first()


def _secret_event(kind: str, *, secret: ClientSecret, actor, what: str) -> None:
    audit.record(
        kind,
        tenant=secret.app.tenant,
        app=secret.app,
        actor=actor,
        message=f"Secret {secret.masked} {what}.",
        secret_id=secret.pk,
    )


@sensitive_variables()
@transaction.atomic
def secret_add(*, app: PrivateApp, actor, value: str, label: str = "") -> ClientSecret:
    _lock(app)
    limit = app.catalogue.max_client_secrets
    if _active(app).count() >= limit:
        raise ValidationError(
            f"{app.catalogue.name} allows {limit} active secret{'s' if limit != 1 else ''}: "
            "replace one instead."
        )
    return _new_secret(app=app, actor=actor, value=value, label=label, replacing=None)


def _new_secret(*, app, actor, value: str, label: str, replacing: ClientSecret | None):
    secret = ClientSecret.objects.create(
        app=app,
        label=label,
        value=value,
        last_four=value[-4:] if len(value) >= ClientSecret.MIN_LENGTH else "",
        is_primary=not _active(app).filter(is_primary=True).exists(),
        created_by=actor,
    )
    what = "added as primary" if secret.is_primary else "added"
    if replacing is not None:
        what += f", replacing {replacing.masked}"
    _secret_event(audit.Kind.SECRET_ADDED, secret=secret, actor=actor, what=what)
    return secret


@sensitive_variables()
@transaction.atomic
def secret_replace(*, old: ClientSecret, actor, value: str, label: str = "") -> ClientSecret:
    """Rotation in one step: `old` is revoked and the new secret takes its place (primary if
    it was), so a provider that allows one secret never has none, nor two."""
    _lock(old.app)
    old.refresh_from_db()
    if old.revoked_at:
        raise ValidationError("That secret was revoked meanwhile; add the new one instead.")
    old.revoked_at = timezone.now()
    old.is_primary = False
    old.save(update_fields=["revoked_at", "is_primary"])
    new = _new_secret(app=old.app, actor=actor, value=value, label=label, replacing=old)
    _secret_event(
        audit.Kind.SECRET_REVOKED,
        secret=old,
        actor=actor,
        what=f"revoked: replaced by {new.masked}",
    )
    return new


@transaction.atomic
def secret_make_primary(*, secret: ClientSecret, actor) -> ClientSecret:
    _lock(secret.app)
    secret.refresh_from_db()
    if secret.revoked_at:
        raise ValidationError("A revoked secret cannot become primary.")
    _active(secret.app).exclude(pk=secret.pk).update(is_primary=False)
    secret.is_primary = True
    secret.save(update_fields=["is_primary"])
    _secret_event(audit.Kind.SECRET_PRIMARY, secret=secret, actor=actor, what="made primary")
    return secret


@transaction.atomic
def secret_revoke(*, secret: ClientSecret, actor) -> ClientSecret:
    app = secret.app
    _lock(app)
    secret.refresh_from_db()
    if secret.revoked_at:
        raise ValidationError("This secret is already revoked.")
    others = _active(app).exclude(pk=secret.pk).exists()
    if secret.is_primary and others:
        raise ValidationError("Make another secret primary before revoking this one.")
    if not others and PkceMode(app.pkce_mode).needs_secret:
        raise ValidationError("This is the app's only secret: add a new one before revoking it.")
    secret.revoked_at = timezone.now()
    secret.is_primary = False
    secret.save(update_fields=["revoked_at", "is_primary"])
    _secret_event(audit.Kind.SECRET_REVOKED, secret=secret, actor=actor, what="revoked")
    return secret
