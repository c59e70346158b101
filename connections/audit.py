"""The audit trail: one row per change to an app, a secret, a token or a key; never a secret."""

import contextvars
from contextlib import contextmanager

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
    """Delete events created before `before`, oldest first, `batch` rows per statement; the
    number deleted. Bounded: what is left goes at the next run."""
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            AuditEvent.objects.filter(created_at__lt=before)
            .order_by("created_at")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            break
        deleted += AuditEvent.objects.filter(pk__in=ids).delete()[0]
    return deleted
