"""URLs the registry shows but does not own."""

from django.conf import settings
from django.urls import NoReverseMatch, reverse


def callback_url() -> str:
    """The portal's own OAuth callback, as providers must have it registered."""
    try:
        path = reverse("oauth_callback")
    except NoReverseMatch:
        # The callback view lands separately (connections/views/connect.py); same path.
        path = "/oauth/callback/"
    return settings.PORTAL_BASE_URL + path
