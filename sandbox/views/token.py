"""The token and revoke endpoints of every provider: parse, identify the client, apply the
rate limit and injected faults, authenticate, then run the grant (sandbox.grants)."""

import base64
import binascii
import json
import time
from urllib.parse import unquote_plus

from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import faults, grants, ratelimit
from sandbox.grants import Caller, OAuthError, invalid_client
from sandbox.models import Client, Fault, TokenRequest
from sandbox.profiles import Profile
from sandbox.views.common import from_oauth_error, oauth_error

MAX_PARAM = 8192


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
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
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
            caller = authenticate(profile, client_id, secret)
            wait = ratelimit.admit(caller.client)
            if wait is not None:
                return rate_limited(wait)
            return HANDLERS[name](request, params, check_secret(caller, secret))
        except OAuthError as exc:
            return from_oauth_error(exc, profile)

    return view


def handle_token(request, params: dict, caller: Caller) -> JsonResponse:
    fault = injected_fault(caller)
    if fault is not None:
        return fault
    lost = faults.take(caller.profile.key, caller.client.client_id, Fault.Kind.LOST_RESPONSE)
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
    return reply


def handle_revoke(request, params: dict, caller: Caller) -> JsonResponse:
    with transaction.atomic():
        grants.revoke(caller, params)
    return JsonResponse({}, headers={"Cache-Control": "no-store"})


HANDLERS = {"token": handle_token, "revoke": handle_revoke}
token = endpoint("token")
revoke = endpoint("revoke")
