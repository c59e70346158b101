"""Marking connections as needing re-authorisation from outside a refresh (an app's scopes
were widened and the provider invalidated its tokens).

Each row is written by compare-and-set on its version, so a refresh in flight notices: its
next lease extension fails (it sends nothing more) and its store keeps the mark.
"""

from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from connections import audit
from connections.models import AuditEvent, Connection, PrivateApp
from connections.notify import tell
from connections.webhook_events import EventType, emit

MARK_TRIES = 20


def connections_mark_reauth(*, app: PrivateApp, why: str, actor, message: str) -> int:
    """Mark the app's active and failing connections; the number marked."""
    marked = 0
    for pk in app.connections.refreshable().values_list("pk", flat=True):
        conn = _mark(pk, why)
        if conn is None:
            continue
        marked += 1
        audit.record(
            AuditEvent.Kind.REAUTH_NEEDED,
            tenant=app.tenant,
            connection=conn,
            actor=actor,
            message=message,
        )
        emit(
            EventType.NEEDS_REAUTH,
            connection=conn,
            key=f"reauth:{pk}:{conn.version + 1}",
            reason=why,
        )
    if marked:
        # One alert for the whole app, not one per connection: a widened scope marks them all.
        tell(
            tenant=app.tenant,
            key=f"reauth-app:{app.pk}:{timezone.now().isoformat()}",
            subject=f"{marked} connection{'s' if marked != 1 else ''} of {app.name} "
            "need re-authorisation",
            body=f"{message} Each connection's owner reconnects it; the expiry report lists "
            "them under Needs attention.",
            path=reverse("expiry_report", args=[app.tenant.slug])
            + f"?app={app.pk}&attention=needs_reauth#table",
        )
    return marked


def _mark(pk: int, why: str) -> Connection | None:
    for _ in range(MARK_TRIES):
        conn = Connection.objects.filter(pk=pk).first()
        if conn is None or not conn.is_refreshable:
            return None
        if Connection.objects.filter(pk=pk, version=conn.version).update(
            status=Connection.Status.NEEDS_REAUTH,
            next_refresh_at=None,
            refresh_enqueued_at=None,
            last_error=why,
            version=F("version") + 1,
        ):
            return conn
    return None
