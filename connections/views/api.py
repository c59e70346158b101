"""The token API for a tenant's own services: a valid access token, never a refresh token.

Authenticated only by a tenant API key (no session, so no CSRF); every answer is JSON and
`Cache-Control: no-store`. A connection outside the key's tenant answers exactly like a missing
one, so a key cannot probe for other tenants' ids.
"""

from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from connections import apikeys, lifecycle, metrics
from connections.lifecycle import TokenUnavailable
from connections.models import Connection

# Bounded wait for a refresh another request is running; well below usual WSGI timeouts.
WAIT_SECONDS = 10.0
# Ids beyond a signed 64-bit integer overflow the database driver; no such row can exist.
MAX_ID = 2**63 - 1
RETRY_AFTER_BUSY = 1
RETRY_AFTER_MIN, RETRY_AFTER_MAX, RETRY_AFTER_DEFAULT = 1, 300, 30
UNAVAILABLE_STATUS = {
    "needs_reauth": 409,
    "revoked": 409,
    "app_disabled": 409,
    "provider_down": 503,
    "busy": 503,
}


def _json(body: dict, status: int = 200, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(body, status=status, headers=headers)
    response["Cache-Control"] = "no-store"
    return response


def _error(code: str, message: str, status: int, headers: dict | None = None) -> JsonResponse:
    return _json({"error": code, "message": message}, status, headers)


def _not_found() -> JsonResponse:
    return _error("not_found", "No such connection.", 404)


def _retry_after(connection_id: int, reason: str) -> int:
    """Seconds until the scheduled retry (clamped), so callers do not hammer a dead provider."""
    if reason == "busy":
        return RETRY_AFTER_BUSY
    due = (
        Connection.objects.filter(pk=connection_id)
        .values_list("next_refresh_at", flat=True)
        .first()
    )
    if due is None:
        return RETRY_AFTER_DEFAULT
    seconds = int((due - timezone.now()).total_seconds()) + 1
    return max(RETRY_AFTER_MIN, min(RETRY_AFTER_MAX, seconds))


def _token_body(conn: Connection) -> dict:
    expires_at = conn.access_expires_at
    return {
        "access_token": conn.access_token,
        "token_type": conn.token_type or "Bearer",
        "expires_at": expires_at.isoformat() if expires_at else None,
        "expires_in": (
            max(0, int((expires_at - timezone.now()).total_seconds())) if expires_at else None
        ),
        "connection_id": conn.pk,
        "status": conn.status,
    }


def _counted(view):
    """Every answer counts in /metrics by its status."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        metrics.inc(metrics.TOKEN_API_REQUESTS, str(response.status_code))
        return response

    return wrapper


@_counted
@csrf_exempt
def connection_token(request: HttpRequest, pk: int) -> JsonResponse:
    if request.method != "GET":
        return _error("method_not_allowed", "Only GET is allowed here.", 405, {"Allow": "GET"})
    key = apikeys.authenticate(request)
    if key is None:
        return _error(
            "invalid_api_key",
            "Send a valid tenant API key as 'Authorization: Bearer <key>' or 'X-Api-Key'.",
            401,
            {"WWW-Authenticate": 'Bearer realm="token-api"'},
        )
    if pk > MAX_ID:
        return _not_found()
    try:
        # Scoped to the key's tenant in the query itself: a foreign id never triggers a refresh.
        conn = lifecycle.connection_token(pk, tenant_id=key.tenant_id, wait_seconds=WAIT_SECONDS)
    except Connection.DoesNotExist:
        return _not_found()
    except TokenUnavailable as exc:
        status = UNAVAILABLE_STATUS.get(exc.reason, 503)
        headers = {"Retry-After": str(_retry_after(pk, exc.reason))} if status == 503 else None
        return _error(exc.reason, str(exc), status, headers)
    return _json(_token_body(conn))


urlpatterns = [
    path("api/v1/connections/<int:pk>/token", connection_token, name="api_token"),
]
