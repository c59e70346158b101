"""The token and revoke endpoints of every provider: parse, identify the client, count the
refresh token presented, apply the rate limit and injected faults, authenticate, then run the
grant (sandbox.grants)."""

import base64
import json
import time
from collections.abc import Iterator
from urllib.parse import unquote_plus

from django.db import transaction
from django.db.models import F
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import faults, grants, ratelimit
from sandbox.grants import Caller, OAuthError, invalid_client
from sandbox.models import Client, Fault, Token, TokenRequest, digest
from sandbox.profiles import Profile
from sandbox.views.common import from_oauth_error, oauth_error

MAX_PARAM = 8192
#: a trickled answer's body is sent in this many pieces (fewer for a shorter body)
TRICKLE_PIECES = 10


def read_params(request, profile: Profile) -> dict[str, str]:
    """The body as a flat dict of strings, in the encodings this provider accepts."""
    content_type = request.content_type or ""
    if content_type == "application/json":
        if "json" not in profile.body_formats:
            raise OAuthError("invalid_request", "send the body as x-www-form-urlencoded")
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_request", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "the JSON body must be an object")
        params = {}
        for key, value in data.items():
            if value is None:
                continue
            if isinstance(value, dict | list):
                raise OAuthError("invalid_request", f"{key} must be a string")
            params[key] = value if isinstance(value, str) else json.dumps(value)
    else:
        try:
            form = request.POST
        except Exception:  # any malformed multipart or urlencoded body is bad input
            raise OAuthError("invalid_request", "the body could not be parsed") from None
        params = {}
        for key, values in form.lists():
            if len(values) > 1:  # RFC 6749 §3.2: parameters must not be repeated
                raise OAuthError("invalid_request", f"{key} is repeated")
            params[key] = values[0]
    for key, value in params.items():
        # NUL cannot be stored in PostgreSQL text; nothing legitimate is that long.
        if "\x00" in value or "\x00" in key or len(value) > MAX_PARAM:
            raise OAuthError("invalid_request", f"{key[:40]} is malformed")
    return params


def client_credentials(request, params: dict, profile: Profile) -> tuple[str, str | None]:
    """(client_id, secret or None) from HTTP Basic or the body, as the provider allows."""
    header = request.headers.get("Authorization", "")
    if "basic" in profile.client_auth and header[:6].lower() == "basic ":
        try:
            # ValueError covers bad base64 (binascii.Error), a header with non-ASCII
            # characters (as WSGI hands over any non-ASCII bytes) and a non-UTF-8 payload.
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except ValueError:
            raise invalid_client("malformed Basic authorization header") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep or "\x00" in decoded:
            raise invalid_client("malformed Basic authorization header")
        if "client_secret" in params:
            raise OAuthError("invalid_request", "use one client authentication method")
        # RFC 6749 §2.3.1 form-encodes id and secret first; most clients do not, so try both.
        body_id = params.get("client_id")
        if body_id is not None and body_id not in (client_id, unquote_plus(client_id)):
            raise OAuthError("invalid_request", "client_id differs from the Authorization header")
        return client_id, secret
    if not profile.client_auth & {"form", "json"}:
        raise invalid_client("authenticate with HTTP Basic")
    return params.get("client_id", ""), params.get("client_secret")


def authenticate(profile: Profile, client_id: str, secret: str | None) -> Caller:
    client = Client.objects.filter(provider=profile.key, client_id=client_id).first()
    if client is None and client_id != unquote_plus(client_id):
        client = Client.objects.filter(
            provider=profile.key, client_id=unquote_plus(client_id)
        ).first()
    if client is None:
        raise invalid_client("unknown client_id")
    return Caller(profile=profile, client=client, secret_ok=False)


def check_secret(caller: Caller, secret: str | None) -> Caller:
    if secret is None:
        return caller
    if not (caller.client.check_secret(secret) or caller.client.check_secret(unquote_plus(secret))):
        raise invalid_client()
    return Caller(profile=caller.profile, client=caller.client, secret_ok=True)


def injected_fault(caller: Caller) -> JsonResponse | None:
    """Latency first (then carry on), then a forced 5xx or 429 in place of the answer."""
    key, client_id = caller.profile.key, caller.client.client_id
    slow = faults.take(key, client_id, Fault.Kind.LATENCY)
    if slow is not None:
        time.sleep(slow.latency_ms / 1000)
    fault = faults.take(key, client_id, Fault.Kind.ERROR_5XX, Fault.Kind.RATE_LIMIT)
    if fault is None:
        return None
    if fault.kind == Fault.Kind.RATE_LIMIT:
        return rate_limited(fault.retry_after)
    return oauth_error("server_error", "injected fault", fault.status)


def count_presentation(profile: Profile, client_id: str, value: str | None) -> None:
    """One more presentation of a refresh token this provider issued to this client id (as sent
    or form-decoded, as authenticate() looks it up). A conditional UPDATE, outside the grant's
    transaction: concurrent calls each count and a refused call is not undone."""
    if not value:
        return
    Token.objects.filter(
        client__provider=profile.key,
        client__client_id__in={client_id, unquote_plus(client_id)},
        kind=Token.Kind.REFRESH,
        value_hash=digest(value),
    ).update(presentations=F("presentations") + 1)


def trickled(body: bytes, latency_ms: int) -> Iterator[bytes]:
    """The body in small pieces, the first at once and the others spread evenly over latency_ms.
    Each sleep runs to a deadline fixed from the start, so all the sleeping adds up to at most
    latency_ms however slowly the pieces are written."""
    count = max(1, min(TRICKLE_PIECES, len(body)))
    size = -(-len(body) // count) or 1
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    gap = latency_ms / 1000 / max(1, len(pieces) - 1)
    started = time.monotonic()
    yield pieces[0]
    for index, piece in enumerate(pieces[1:], start=1):
        time.sleep(max(0.0, started + index * gap - time.monotonic()))
        yield piece


def trickle(reply: HttpResponse, latency_ms: int) -> StreamingHttpResponse:
    """The same answer (status, headers, JSON body), its body trickled over latency_ms; the
    status line and headers go out with the first piece."""
    body = reply.content
    slow = StreamingHttpResponse(
        trickled(body, latency_ms), status=reply.status_code, headers=dict(reply.items())
    )
    slow["Content-Length"] = str(len(body))
    return slow


def rate_limited(retry_after: int) -> JsonResponse:
    return oauth_error(
        "rate_limited", "too many requests", 429, headers={"Retry-After": str(retry_after)}
    )


def endpoint(name: str):
    """Build the csrf-exempt POST view for the token or revoke endpoint."""

    @csrf_exempt
    def view(request, profile: Profile):
        if request.method != "POST":
            return oauth_error("invalid_request", "use POST", 405, headers={"Allow": "POST"})
        client_id = ""
        try:
            params = read_params(request, profile)
            client_id, secret = client_credentials(request, params, profile)
            if not client_id or len(client_id) > 255:
                raise invalid_client("client_id is required")
            TokenRequest.objects.create(
                provider=profile.key,
                client_id=client_id,
                endpoint=name,
                grant_type=params.get("grant_type", "")[:40],
                request_id=request.sandbox_request_id,
            )
            if name == "token" and params.get("grant_type") == "refresh_token":
                count_presentation(profile, client_id, params.get("refresh_token"))
            caller = authenticate(profile, client_id, secret)
            wait = ratelimit.admit(caller.client)
            if wait is not None:
                return rate_limited(wait)
            return HANDLERS[name](request, params, check_secret(caller, secret))
        except OAuthError as exc:
            return from_oauth_error(exc, profile)

    return view


def handle_token(request, params: dict, caller: Caller) -> HttpResponse | StreamingHttpResponse:
    fault = injected_fault(caller)
    if fault is not None:
        return fault
    key, client_id = caller.profile.key, caller.client.client_id
    lost = faults.take(key, client_id, Fault.Kind.LOST_RESPONSE)
    # A lost answer is never trickled: that call leaves a pending trickle to the next one.
    slow = None if lost is not None else faults.take(key, client_id, Fault.Kind.TRICKLE)
    try:
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type not in caller.profile.grants:
            raise OAuthError("unsupported_grant_type", f"{grant_type[:40]} is not supported")
        with transaction.atomic():
            reply = JsonResponse(
                grants.GRANTS[grant_type](caller, params),
                headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
            )
    except OAuthError as exc:
        reply = from_oauth_error(exc, caller.profile)
    if lost is not None:
        # Processed and committed (a refresh token is consumed), but the answer never arrives.
        return oauth_error("server_error", "bad gateway (injected lost response)", 502)
    if slow is not None:
        # Processed and committed like any call; only the answer arrives slowly.
        return trickle(reply, slow.latency_ms)
    return reply


def handle_revoke(request, params: dict, caller: Caller) -> JsonResponse:
    with transaction.atomic():
        grants.revoke(caller, params)
    return JsonResponse({}, headers={"Cache-Control": "no-store"})


HANDLERS = {"token": handle_token, "revoke": handle_revoke}
token = endpoint("token")
revoke = endpoint("revoke")
