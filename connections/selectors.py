"""Reads: what pages show. Keyword-only, scoped by tenant."""

from django.db.models import Count, Q

from connections.models import Connection, PrivateApp


def dashboard_summary(*, tenant, user) -> dict:
    apps = PrivateApp.objects.filter(tenant=tenant).annotate(n_connections=Count("connections"))
    connections = Connection.objects.filter(tenant=tenant).select_related("app")
    by_status = dict(connections.values_list("status").annotate(n=Count("id")))
    return {
        "apps": apps,
        "my_connections": connections.filter(user=user)[:20],
        "connections_by_status": by_status,
        "n_connections": sum(by_status.values()),
    }


def connections_due_for_refresh(*, now, limit: int) -> list[int]:
    """Due, refreshable, not under a live lease, not already queued; oldest due first."""
    stale = now - Connection.ENQUEUE_TIMEOUT
    return list(
        Connection.objects.filter(
            status__in=[Connection.Status.ACTIVE, Connection.Status.FAILING],
            next_refresh_at__lte=now,
        )
        .exclude(app__status=PrivateApp.Status.DISABLED)
        .filter(Q(lease_owner="") | Q(lease_expires_at__lt=now))
        .filter(Q(refresh_enqueued_at__isnull=True) | Q(refresh_enqueued_at__lt=stale))
        .order_by("next_refresh_at")
        .values_list("pk", flat=True)[:limit]
    )


def revocations_due(*, now, limit: int) -> list[int]:
    """Disconnects the provider has not confirmed yet, whose next try is due."""
    return list(
        Connection.objects.filter(status=Connection.Status.REVOKED, revoke_retry_at__lte=now)
        .order_by("revoke_retry_at")
        .values_list("pk", flat=True)[:limit]
    )
