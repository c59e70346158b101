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
