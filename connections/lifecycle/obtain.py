"""First tokens: the authorization-code exchange and service-account grants."""

from django.utils import timezone

from connections import audit, oauth
from connections.lifecycle.provider_calls import call_with_secrets, service_grant
from connections.lifecycle.store import token_fields
from connections.models import AuditEvent, AuthorizationAttempt, Connection, PrivateApp

Kind = AuditEvent.Kind
# Someone is waiting in the browser: hold a token request back this long at most for the
# provider's rate limit, then say so.
RATE_LIMIT_WAIT = 10.0


def _save_connection(*, app, kind, tokens, connection=None, user=None, **extra) -> Connection:
    fields = token_fields(app=app, kind=kind, tokens=tokens, refresh_expires_at=None)
    if connection is None:
        connection = Connection(tenant=app.tenant, app=app, kind=kind, user=user)
    for name, value in {**fields, **extra}.items():
        setattr(connection, name, value)
    connection.inflight_refresh_hash = ""
    connection.lease_owner = ""
    connection.save()
    return connection


def obtain_from_code(*, attempt: AuthorizationAttempt, code: str) -> Connection:
    """Exchange the code at the attempt's own app's token endpoint and store the connection
    (a reconnect keeps the connection's id). Raises oauth.ProviderError."""
    app = attempt.app
    tokens, _ = call_with_secrets(
        app,
        lambda creds: oauth.exchange_code(
            app,
            creds,
            code=code,
            redirect_uri=attempt.redirect_uri,
            code_verifier=attempt.pkce_verifier,
        ),
        rate_limit_wait=RATE_LIMIT_WAIT,
    )
    conn = _save_connection(
        app=app,
        kind=Connection.Kind.USER,
        tokens=tokens,
        connection=attempt.connection,
        user=attempt.user,
    )
    audit.record(
        Kind.AUTHORIZED,
        tenant=app.tenant,
        connection=conn,
        actor=attempt.user,
        request_id=tokens.request_id,
        message="Reconnected." if attempt.connection else "Connected.",
    )
    return conn


def obtain_service_token(
    *, app: PrivateApp, actor, connection: Connection | None = None
) -> Connection:
    """Client-credentials or password grant: the token is fetched at once."""
    tokens, _ = call_with_secrets(app, service_grant(app), rate_limit_wait=RATE_LIMIT_WAIT)
    account = app.service_username or app.client_id
    conn = _save_connection(
        app=app,
        kind=Connection.Kind.SERVICE,
        tokens=tokens,
        connection=connection,
        user=actor,
        account_id=account,
        account_name=account,
    )
    audit.record(
        Kind.AUTHORIZED,
        tenant=app.tenant,
        connection=conn,
        actor=actor,
        request_id=tokens.request_id,
        message="Service-account token obtained.",
    )
    return conn


def record_failure(*, app: PrivateApp, actor, error: oauth.ProviderError, connection=None) -> None:
    audit.record(
        Kind.AUTHORIZE_FAILED,
        tenant=app.tenant,
        app=app,
        connection=connection,
        actor=actor,
        request_id=error.request_id,
        message=error.describe(),
        at=timezone.now().isoformat(),
    )
