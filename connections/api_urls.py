"""URLs outside the tenant prefix: the OAuth callback, the token API, health and metrics,
invitations."""

from connections.views import api, connect, invitations, monitoring

urlpatterns = (
    connect.callback_urlpatterns
    + api.urlpatterns
    + monitoring.urlpatterns
    + invitations.urlpatterns
)
