"""URLs outside the tenant prefix: the OAuth callback and the token API."""

from connections.views import api, connect

urlpatterns = connect.callback_urlpatterns + api.urlpatterns
