"""Reads: what pages show. Keyword-only, scoped by tenant."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from connections.models import Connection, OutboundDelivery, PrivateApp


def apps_with_counts(membership):
    """The tenant's apps with n_connections: those the person sees (a member's own)."""
    per_app = Count("connections")
    if not membership.sees_all_connections:
        per_app = Count("connections", filter=Q(connections__user=membership.user_id))
    return PrivateApp.objects.in_tenant(membership.tenant).annotate(n_connections=per_app)


def dashboard_summary(membership) -> dict:
    """Counts of the connections the person sees (a member's own)."""
    connections = Connection.objects.visible_to(membership)
    apps = apps_with_counts(membership)
    by_status: dict[str, int] = {}
    # A live connection of a disabled app counts as paused, not active: as the pages show it.
    for status, app_status, n in connections.values_list("status", "app__status").annotate(
        n=Count("id")
    ):
        paused = status in Connection.REFRESHABLE and app_status == PrivateApp.Status.DISABLED
        key = Connection.PAUSED if paused else status
        by_status[key] = by_status.get(key, 0) + n
    return {
        "apps": apps,
        # (value, label, count) in the statuses' own order, only those with connections: the
        # page shows the label and links the value to the filtered connection list.
        "status_rows": [
            (value, label, by_status[value])
            for value, label in Connection.SHOWN_STATUSES
            if value in by_status
        ],
        "n_connections": sum(by_status.values()),
    }


def revocations_due(*, now, limit: int) -> list[int]:
    """Disconnects the provider has not confirmed yet, whose next try is due."""
    return list(
        Connection.objects.filter(status=Connection.Status.REVOKED, revoke_retry_at__lte=now)
        .order_by("revoke_retry_at")
        .values_list("pk", flat=True)[:limit]
    )


def failed_deliveries(app: PrivateApp, *, hours: int = 24, now=None) -> int:
    """The app's deliveries to its listener made in the last `hours` that failed."""
    since = (now or timezone.now()) - timedelta(hours=hours)
    return app.outbound.filter(status=OutboundDelivery.Status.FAILED, created_at__gte=since).count()
