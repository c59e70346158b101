"""Tenant-scoped URLs (mounted under /t/<tenant_slug>/); each views module owns its list."""

from connections.views import apps, connect, connections, keys

urlpatterns = apps.urlpatterns + connect.urlpatterns + connections.urlpatterns + keys.urlpatterns
