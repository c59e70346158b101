"""URLs outside the tenant prefix: the OAuth callback, the token API, health and metrics,
invitations, inbound webhooks."""

from connections.views import api, connect, invitations, monitoring, webhooks

urlpatterns = (
    connect.callback_urlpatterns
    + api.urlpatterns
    + monitoring.urlpatterns
    + invitations.urlpatterns
    + webhooks.inbound_urlpatterns
)
