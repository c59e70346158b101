"""Reads: what pages show. Keyword-only, scoped by tenant."""

from django.db.models import Count, Q

from connections.models import Connection, PrivateApp


def apps_with_counts(*, tenant, user, own_only: bool):
    """The tenant's apps with n_connections: the person's own when own_only (members)."""
    per_app = Count("connections")
    if own_only:
        per_app = Count("connections", filter=Q(connections__user=user))
    return PrivateApp.objects.filter(tenant=tenant).annotate(n_connections=per_app)


def dashboard_summary(*, tenant, user, own_only: bool) -> dict:
    """own_only (members): the counts are of the person's own connections."""
    connections = Connection.objects.filter(tenant=tenant).select_related("app")
    if own_only:
        connections = connections.filter(user=user)
    apps = apps_with_counts(tenant=tenant, user=user, own_only=own_only)
    by_status = dict(connections.values_list("status").annotate(n=Count("id")))
    return {
        "apps": apps,
        # (value, label, count) in the statuses' own order, only those with connections: the
        # page shows the label and links the value to the filtered connection list.
        "status_rows": [
            (value, label, by_status[value])
            for value, label in Connection.Status.choices
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
