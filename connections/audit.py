"""The audit trail: one row per change to an app, a secret, a token or a key; never a secret."""

import contextvars
from contextlib import contextmanager

from django.utils import timezone

from connections import retention
from connections.models import AuditEvent
from connections.prepared import PreparedInsert

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


#: an event's row, prepared: a refresh writes one every time, and the ORM's create()
#: compiled its INSERT afresh each time (connections.lifecycle.store writes it together with
#: the tokens)
ROW = PreparedInsert(
    AuditEvent,
    ["tenant", "app", "connection", "actor", "kind", "message", "request_id", "data", "created_at"],
)


def row(
    kind: str,
    *,
    tenant,
    app=None,
    connection=None,
    actor=None,
    message: str = "",
    request_id: str = "",
    **data,
) -> dict:
    """An event's values as ROW's slots, stamped now (record() writes them at once)."""
    if actor is None:
        actor = _acting.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if app is None:
        app = getattr(connection, "app", None)
    return {
        "tenant": tenant.pk,
        "app": app.pk if app is not None else None,
        "connection": connection.pk if connection is not None else None,
        "actor": actor.pk if actor is not None else None,
        "kind": kind,
        "message": message,
        "request_id": request_id or "",
        "data": data,
        "created_at": timezone.now(),
    }


def record(kind: str, **event) -> None:
    ROW.run(**row(kind, **event))


def prune(*, before, batch: int, max_batches: int) -> int:
    """Delete events created before `before` (connections.retention)."""
    return retention.delete_before(
        AuditEvent.objects.all(), "created_at", before=before, batch=batch, max_batches=max_batches
    )
