"""URLs outside the tenant prefix: the OAuth callback, the token API, health and metrics."""

from connections.views import api, connect, monitoring

urlpatterns = connect.callback_urlpatterns + api.urlpatterns + monitoring.urlpatterns
