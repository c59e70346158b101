"""The authorisation-code flow: start an attempt, and finish it when the provider sends the
user back to the one callback URL.

Views stay thin: they turn a FlowError into a message. Tokens are written only by
connections.lifecycle (connection_obtain_from_code); this module writes the attempt and tells it how to
find the account a grant belongs to.
"""

import hmac
import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from connections import oauth
from connections.lifecycle import (
    AccountNotAllowed,
    connection_obtain_from_code,
    connection_record_failure,
)
from connections.models import AuthorizationAttempt, Connection, PrivateApp, sha256_hex
from connections.providers import Grant, PkceMode
from portal.models import Membership

log = logging.getLogger(__name__)

ATTEMPT_LIFETIME = timedelta(minutes=10)


class FlowError(Exception):
    """A refusal the user should read. `app` is set only once the attempt is known to belong
    to the user, so the view may send them back to its page without leaking anything."""

    def __init__(self, message: str, *, app: PrivateApp | None = None):
        super().__init__(message)
        self.app = app


def callback_uri() -> str:
    return settings.PORTAL_BASE_URL + reverse("oauth_callback")


def attempt_start(*, app: PrivateApp, user, connection: Connection | None = None) -> str:
    """Record a new attempt and return the provider URL to send the user to."""
    if not app.is_enabled:
        raise FlowError(f"{app.name} is {app.get_status_display().lower()}; it cannot connect.")
    if app.grant_type != Grant.AUTHORIZATION_CODE:
        raise FlowError(f"{app.name} is a service account; it connects without a browser.")
    redirect_uri = callback_uri()
    # Providers match redirect URIs exactly, so a missing one would fail at the provider with
    # a page the user cannot act on; say so here instead.
    if redirect_uri not in app.redirect_uris:
        raise FlowError(
            f"{app.name} does not list this portal's callback URL {redirect_uri} among its "
            "redirect URIs. An admin must add it to the app (and at the provider)."
        )
    state = secrets.token_urlsafe(32)
    verifier = challenge = None
    # S256 PKCE on every authorization-code flow (RFC 9700 §2.1.1), also beside a client
    # secret, unless the catalogue says the provider refuses a code_challenge.
    if PkceMode(app.pkce_mode).uses_pkce or not app.catalogue.rejects_pkce:
        verifier, challenge = oauth.pkce_pair()
    scopes = list(app.scopes)
    try:
        url = oauth.authorization_url(
            app, redirect_uri=redirect_uri, state=state, scopes=scopes, code_challenge=challenge
        )
    except oauth.ProviderError as exc:
        raise FlowError(f"{app.name} cannot connect: {exc}.") from exc
    AuthorizationAttempt.objects.create(
        tenant=app.tenant,
        app=app,
        user=user,
        connection=connection,
        state_hash=sha256_hex(state),
        pkce_verifier=verifier,
        redirect_uri=redirect_uri,
        scopes=scopes,
        expires_at=timezone.now() + ATTEMPT_LIFETIME,
    )
    return url


UNKNOWN_STATE = (
    "This authorisation link is not valid (unknown, or not started by you). "
    "Start again with Connect on the app's page."
)


def _attempt_for(*, user, state: str) -> AuthorizationAttempt:
    """The attempt this state names, if it is the user's and in one of the user's tenants.
    Someone else's attempt answers like an unknown one and is left untouched."""
    state_hash = sha256_hex(state)
    attempt = (
        AuthorizationAttempt.objects.select_related("app", "tenant", "connection")
        .filter(state_hash=state_hash)
        .first()
    )
    if attempt is None or not hmac.compare_digest(attempt.state_hash, state_hash):
        raise FlowError(UNKNOWN_STATE)
    if attempt.user_id != user.pk:
        raise FlowError(UNKNOWN_STATE)
    if not Membership.objects.filter(user=user, tenant_id=attempt.tenant_id).exists():
        raise FlowError(UNKNOWN_STATE)
    return attempt


def _claim(attempt: AuthorizationAttempt) -> None:
    """Mark the attempt used; a replay (or a racing second request) loses the UPDATE."""
    now = timezone.now()
    app = attempt.app
    if attempt.expires_at <= now:
        raise FlowError(
            "This authorisation took longer than 10 minutes and expired. Please connect again.",
            app=app,
        )
    claimed = AuthorizationAttempt.objects.filter(
        pk=attempt.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if claimed != 1:
        raise FlowError("This authorisation has already been used. Please connect again.", app=app)


def _check_issuer(attempt: AuthorizationAttempt, iss: str | None) -> None:
    """RFC 9207: an answer carrying another provider's issuer is a mix-up attack."""
    app = attempt.app
    expected = app.endpoint("issuer")
    # Required where the provider documents it, and for a generic app given an issuer.
    required = app.catalogue.sends_iss or (app.catalogue.generic and bool(app.issuer))
    if iss is None and required:
        raise FlowError(
            f"The answer carried no issuer (iss), which {app.name} always sends. Nothing was "
            "stored; please connect again.",
            app=app,
        )
    if iss is None or not expected:
        return
    if not hmac.compare_digest(iss.encode(), expected.encode()):
        raise FlowError(
            f"The answer did not come from {attempt.app.catalogue.name} (issuer mismatch). "
            "Nothing was stored; please connect again.",
            app=attempt.app,
        )


def _provider_refusal(attempt: AuthorizationAttempt, params: Mapping[str, str]) -> FlowError:
    app = attempt.app
    name = app.catalogue.name
    error = params.get("error", "")[:100]
    if error == "access_denied":
        return FlowError(f"You cancelled the connection at {name}; nothing was stored.", app=app)
    detail = params.get("error_description", "")[:300] or error
    connection_record_failure(
        app=app,
        actor=attempt.user,
        error=oauth.ProviderError(oauth.ErrorKind.REJECTED, detail, error=error),
        connection=attempt.connection,
    )
    return FlowError(f"{name} refused the authorisation: {detail}. Nothing was stored.", app=app)


class Finished(NamedTuple):
    connection: Connection
    #: the connection a reconnect was for, when the user granted another account (the grant
    #: then went elsewhere and this one is left as it was)
    left: Connection | None
    #: a Connect (not a reconnect) for an account that already had a connection on the app:
    #: that connection was reconnected, keeping its id
    reused: bool


def attempt_finish(*, user, params: Mapping[str, str]) -> Finished:
    """Validate the provider's answer and store the connection. Raises FlowError."""
    state = params.get("state") or ""
    if not state:
        raise FlowError(UNKNOWN_STATE)
    attempt = _attempt_for(user=user, state=state)
    _claim(attempt)
    _check_issuer(attempt, params.get("iss"))
    if not attempt.app.is_enabled:
        raise FlowError(
            f"{attempt.app.name} was disabled meanwhile; nothing was stored.", app=attempt.app
        )
    if params.get("error"):
        raise _provider_refusal(attempt, params)
    code = params.get("code") or ""
    if not code:
        raise FlowError(
            "The provider sent no authorisation code. Please connect again.", app=attempt.app
        )
    app = attempt.app
    try:
        conn = connection_obtain_from_code(attempt=attempt, code=code, identify=account_of)
    except AccountNotAllowed as exc:
        raise FlowError(str(exc), app=app) from exc
    except oauth.ProviderError as exc:
        connection_record_failure(app=app, actor=user, error=exc, connection=attempt.connection)
        if exc.kind == oauth.ErrorKind.INVALID_GRANT:
            reason = "the authorisation code was refused (already used or expired)"
        else:
            reason = exc.describe()
        raise FlowError(
            f"{app.catalogue.name} did not give a token: {reason}. Nothing was stored; "
            "please connect again.",
            app=app,
        ) from exc
    left = attempt.connection if attempt.connection_id not in (None, conn.pk) else None
    reused = conn.pk != attempt.connection_id and conn.created_at < attempt.created_at
    return Finished(conn, left, reused)


def test_path(app: PrivateApp) -> str:
    # Manhattan Active's user-details endpoint names the service user in its path.
    return (app.endpoint("test_path") or "/").replace("{username}", app.service_username or "")


def _call_test_endpoint(app: PrivateApp, *, access_token: str | None, token_type: str):
    return oauth.call_api(
        app,
        access_token=access_token,
        token_type=token_type,
        path=test_path(app),
        api_key=app.subscription_key_primary or "",
    )


def call_test_endpoint(conn: Connection):
    """GET the provider's test endpoint with the connection's current access token."""
    return _call_test_endpoint(conn.app, access_token=conn.access_token, token_type=conn.token_type)


def account_of(app: PrivateApp, tokens: oauth.TokenSet) -> dict[str, str]:
    """Which account a grant is for, from the test endpoint. A connection works without it,
    so no answer means an empty result (logged), not a failed connect."""
    try:
        response = _call_test_endpoint(
            app, access_token=tokens.access_token, token_type=tokens.token_type
        )
    except oauth.ProviderError:
        log.warning("account lookup for app %s got no answer", app.pk)
        return {}
    data = oauth.safe_json(response) if response.status_code == 200 else {}
    if not isinstance(data, dict):
        return {}
    account = {k: str(data[k])[:255] for k in ("account_id", "account_name") if data.get(k)}
    # Without an account, the signed-in user names the connection (Manus answers "user").
    user = data.get("username") or data.get("user")
    if isinstance(user, str | int) and user:
        account.setdefault("account_id", str(user)[:255])
        account.setdefault("account_name", str(user)[:255])
    return account
