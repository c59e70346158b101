"""The audit trail: one row per change to an app, a secret, a token or a key; never a secret."""

import contextvars
from contextlib import contextmanager

from connections import retention
from connections.models import AuditEvent

Kind = AuditEvent.Kind
#: the person whose click is being carried out; events recorded meanwhile name them
_acting = contextvars.ContextVar("audit_acting", default=None)


@contextmanager
def acting(user):
    """Events recorded inside the block without an actor are the person's: a manual refresh's
    "Refreshed" (or "Refresh failed") is by whoever clicked, not "system"."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


def record(
    kind: str,
    *,
    tenant,
    app=None,
    connection=None,
    actor=None,
    message: str = "",
    request_id: str = "",
    **data,
) -> AuditEvent:
    if actor is None:
        actor = _acting.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        tenant=tenant,
        app=app if app is not None else getattr(connection, "app", None),
        connection=connection,
        actor=actor,
        kind=kind,
        message=message,
        request_id=request_id or "",
        data=data,
    )


def prune(*, before, batch: int, max_batches: int) -> int:
    """Delete events created before `before` (connections.retention)."""
    return retention.delete_before(
        AuditEvent.objects.all(), "created_at", before=before, batch=batch, max_batches=max_batches
    )
