"""Reads: what pages show. Keyword-only, scoped by tenant."""

from django.db.models import Count

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
