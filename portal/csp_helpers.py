"""Content-Security-Policy helpers; the policy itself is CONTENT_SECURITY_POLICY in settings.

Imported by the settings: nothing here may touch django.conf at import time.
"""

from urllib.parse import urlsplit


def origin(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL (a CSP source expression), else ""."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # never a user:password in the header
    return f"{parts.scheme}://{host}" if parts.scheme and host else ""


def allow_form_redirect(response, *urls: str):
    """Let the forms of this page end up at `urls`' origins.

    Connect and Reconnect post to the portal, which redirects to the provider's authorize URL.
    Browsers check form-action on every redirect a form submission follows, so with
    form-action 'self' alone that redirect would be blocked.
    """
    origins = [o for o in map(origin, urls) if o]
    if origins:
        response._csp_update = {"form-action": origins}  # read by csp.middleware.CSPMiddleware
    return response
