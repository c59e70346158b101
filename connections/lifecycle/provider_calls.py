"""Calling the token endpoint with the app's secrets: primary first, the next on
invalid_client; a call that got no answer is sent again promptly with the same grant."""

import time
from collections.abc import Callable

from connections import oauth
from connections.models import Connection, PrivateApp
from connections.oauth import Credentials, ErrorKind, ProviderError, TokenSet
from connections.providers import Grant, PkceMode

TRANSPORT_RETRIES = 2


def secrets_to_try(app: PrivateApp) -> list[str | None]:
    if not PkceMode(app.pkce_mode).needs_secret:
        return [None]
    return [s.value for s in app.active_secrets()] or [None]


def call_with_secrets(
    app: PrivateApp, call: Callable[[Credentials], TokenSet], *, deadline: float | None = None
) -> tuple[TokenSet, int]:
    """Returns the tokens and which secret (0 = primary) the provider accepted."""
    rejected: ProviderError | None = None
    unanswered = 0
    for index, secret in enumerate(secrets_to_try(app)):
        creds = oauth.credentials_for(app, secret)
        for attempt in range(TRANSPORT_RETRIES + 1):
            try:
                return call(creds), index
            except ProviderError as exc:
                out_of_time = deadline is not None and time.monotonic() > deadline
                if (
                    exc.kind == ErrorKind.TRANSPORT
                    and attempt < TRANSPORT_RETRIES
                    and not out_of_time
                ):
                    unanswered += 1
                    time.sleep(0.2 * 2**attempt)
                    continue
                if exc.kind == ErrorKind.INVALID_CLIENT:
                    rejected = exc
                    break
                # Lets the caller explain an invalid_grant that follows an unanswered call.
                exc.unanswered_before = unanswered
                raise
    assert rejected is not None
    raise rejected


def service_grant(app: PrivateApp) -> Callable[[Credentials], TokenSet]:
    if app.grant_type == Grant.PASSWORD:
        return lambda creds: oauth.password_grant(
            app,
            creds,
            username=app.service_username or "",
            password=app.service_password or "",
            scopes=app.scopes,
        )
    return lambda creds: oauth.client_credentials(app, creds, scopes=app.scopes)


def renewal_call(conn: Connection, app: PrivateApp) -> Callable[[Credentials], TokenSet]:
    """A user connection spends its refresh token; a service account asks for a new token."""
    if conn.kind == Connection.Kind.SERVICE:
        return service_grant(app)
    refresh_token = conn.refresh_token or ""
    return lambda creds: oauth.refresh(app, creds, refresh_token=refresh_token)
