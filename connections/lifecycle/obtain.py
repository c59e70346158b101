"""First tokens: the authorization-code exchange and service-account grants."""

from collections.abc import Callable

from django.utils import timezone

from connections import audit, oauth
from connections.lifecycle import provider_calls
from connections.lifecycle.provider_calls import call_with_secrets, service_grant
from connections.lifecycle.store import token_fields
from connections.models import AuditEvent, AuthorizationAttempt, Connection, PrivateApp

Kind = AuditEvent.Kind


def _save_connection(*, app, kind, tokens, connection=None, user=None, **extra) -> Connection:
    fields = token_fields(app=app, kind=kind, tokens=tokens, refresh_expires_at=None)
    if connection is None:
        connection = Connection(tenant=app.tenant, app=app, kind=kind, user=user)
    for name, value in {**fields, **extra}.items():
        setattr(connection, name, value)
    connection.inflight_refresh_hash = ""
    connection.lease_owner = ""
    # A reconnect ends any revocation still pending: the tokens it was for are replaced.
    connection.revoke_retry_at = None
    connection.save()
    return connection


def _other_account(conn: Connection | None, account: dict[str, str]) -> bool:
    granted = account.get("account_id")
    return bool(conn and conn.account_id and granted and granted != conn.account_id)


def obtain_from_code(
    *,
    attempt: AuthorizationAttempt,
    code: str,
    identify: Callable[[PrivateApp, oauth.TokenSet], dict[str, str]] | None = None,
) -> Connection:
    """Exchange the code at the attempt's own app's token endpoint and store the connection
    with the account `identify` names. A reconnect keeps the connection's id, as tenants'
    services hold it; but if the user granted another account than the connection's, the
    grant becomes a new connection, so that id never starts serving another account.
    Raises oauth.ProviderError.

    The account is asked for before the write: a fresh grant spends no token of ours, so a
    crash in between loses nothing the user cannot redo, while a connection written to the
    wrong row would hand one account's token to the services of another."""
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
        rate_limit_wait=provider_calls.INTERACTIVE_RATE_LIMIT_WAIT,
    )
    account = identify(app, tokens) if identify else {}
    target = attempt.connection
    if _other_account(target, account):
        message = (
            f"Connected: a reconnect of connection #{target.pk} granted another account "
            f"({account['account_id']}, not {target.account_id}), so it became this connection."
        )
        target = None
    else:
        message = "Reconnected." if target else "Connected."
    conn = _save_connection(
        app=app,
        kind=Connection.Kind.USER,
        tokens=tokens,
        connection=target,
        user=attempt.user,
        **account,
    )
    audit.record(
        Kind.AUTHORIZED,
        tenant=app.tenant,
        connection=conn,
        actor=attempt.user,
        request_id=tokens.request_id,
        message=message,
    )
    return conn


def obtain_service_token(
    *, app: PrivateApp, actor, connection: Connection | None = None
) -> Connection:
    """Client-credentials or password grant: the token is fetched at once."""
    tokens, _ = call_with_secrets(
        app, service_grant(app), rate_limit_wait=provider_calls.INTERACTIVE_RATE_LIMIT_WAIT
    )
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
