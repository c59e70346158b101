"""The audit trail: one row per change to an app, a secret, a token or a key; never a secret."""

from connections.models import AuditEvent

Kind = AuditEvent.Kind


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
