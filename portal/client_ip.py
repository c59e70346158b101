"""The client's address for sign-in throttling (django-axes' AXES_CLIENT_IP_CALLABLE).

REMOTE_ADDR, unless the operator says how many proxies stand in front (LOGIN_TRUSTED_PROXIES):
then the address the outermost of them appended to X-Forwarded-For. Entries left of that are
the client's own claims and are never trusted, or anyone could pick the address to lock out.
"""

from django.conf import settings


def client_ip(request) -> str:
    proxies = settings.LOGIN_TRUSTED_PROXIES
    if proxies > 0:
        chain = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        chain = [a for a in chain if a]
        if len(chain) >= proxies:
            return chain[-proxies]
    return request.META.get("REMOTE_ADDR", "")
