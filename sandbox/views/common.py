"""Helpers every sandbox view shares: the X-Request-Id header, JSON errors, bearer tokens."""

import functools
import uuid

from django.http import JsonResponse
from django.utils import timezone

from sandbox.grants import OAuthError
from sandbox.models import Token, digest
from sandbox.profiles import Profile


def with_request_id(view):
    """Give every response an X-Request-Id (seed 003), also stored on request.sandbox_request_id
    so the request log carries the same id the client saw."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        request.sandbox_request_id = uuid.uuid4().hex
        response = view(request, *args, **kwargs)
        response["X-Request-Id"] = request.sandbox_request_id
        return response

    return wrapped


def oauth_error(
    error: str, description: str = "", status: int = 400, *, headers: dict | None = None
) -> JsonResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    # RFC 6749 §5.1: token replies must not be cached.
    return JsonResponse(
        body, status=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def from_oauth_error(exc: OAuthError, profile: Profile) -> JsonResponse:
    headers = {}
    if exc.status == 401 and "basic" in profile.client_auth:
        headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
    return oauth_error(exc.error, exc.description, exc.status, headers=headers)


def bearer_token(request, profile: Profile) -> Token | None:
    """The active access token in the Authorization header, issued by this provider."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or "\x00" in value or not value.isascii():
        return None
    token = (
        Token.objects.select_related("user", "client")
        .filter(client__provider=profile.key, kind=Token.Kind.ACCESS, value_hash=digest(value))
        .first()
    )
    return token if token is not None and token.is_active(timezone.now()) else None


def unauthorized(description: str = "the access token is invalid or expired") -> JsonResponse:
    return JsonResponse(
        {"error": "invalid_token", "error_description": description},
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )
