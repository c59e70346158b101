"""Tenant-scoped URLs (mounted under /t/<tenant_slug>/); each views module owns its list."""

from connections.views import (
    apps,
    audit_log,
    connect,
    connections,
    dashboard,
    keys,
    listener,
    members,
    report,
    webhooks,
    webhooks_sent,
)

urlpatterns = (
    dashboard.urlpatterns
    + apps.urlpatterns
    + connect.urlpatterns
    + connections.urlpatterns
    + keys.urlpatterns
    + report.urlpatterns
    + audit_log.urlpatterns
    + members.urlpatterns
    + webhooks.urlpatterns
    + webhooks_sent.urlpatterns
    + listener.urlpatterns
)
