"""First tokens: the authorization-code exchange and service-account grants."""

from collections.abc import Callable

from django.db.models import F
from django.utils import timezone

from connections import audit, oauth
from connections.lifecycle import lease, provider_calls
from connections.lifecycle.provider_calls import call_with_secrets, service_grant
from connections.lifecycle.revoke import revoke_tokens
from connections.lifecycle.store import token_fields
from connections.models import AuditEvent, AuthorizationAttempt, Connection, PrivateApp
from connections.webhook_events import EventType, emit

Kind = AuditEvent.Kind


# How long a reconnect waits for a refresh in flight before taking the row from it.
RECONNECT_WAIT_SECONDS = 20.0


def _save_connection(*, app, kind, tokens, connection=None, user=None, **extra) -> Connection:
    """A new connection (created whole), or a reconnect: the new grant written under the
    connection's lease by compare-and-set, then the grant it replaces revoked at the provider.
    The webhook event it makes (created, or recovered) follows the write."""
    fields = token_fields(
        app=app, kind=kind, tokens=tokens, refresh_expires_at=None, now=timezone.now()
    )
    if connection is None:
        made = Connection.objects.create(
            tenant=app.tenant, app=app, kind=kind, user=user, **fields, **extra
        )
        _announce(made, None)
        return made
    replaced, before = _write_over(connection.pk, {**fields, **extra, "user": user})
    _revoke_replaced(connection, replaced)
    connection.refresh_from_db()
    _announce(connection, before)
    return connection


def _write_over(connection_id: int, fields: dict) -> tuple[dict[str, str | None], str]:
    """Write a new grant into an existing connection; the tokens it held before, and the
    status it had. Waits
    (bounded) for a refresh in flight, then takes the lease from it: that refresh sends
    nothing more, and its late answer is an older generation, revoked, never stored."""
    owner = lease.new_owner()
    conn = lease.acquire_waiting(connection_id, owner=owner, wait_seconds=RECONNECT_WAIT_SECONDS)
    for _ in range(lease.TAKE_OVER_TRIES):
        if conn is None:
            conn = lease.take_over(connection_id, owner=owner)
        replaced = {"refresh_token": conn.refresh_token, "access_token": conn.access_token}
        written = Connection.objects.filter(
            pk=conn.pk, lease_owner=owner, version=conn.version
        ).update(
            **fields,
            # A reconnect ends any revocation still pending: the tokens it was for are
            # revoked below, as replaced.
            revoke_retry_at=None,
            lease_owner="",
            lease_expires_at=None,
            inflight_refresh_hash="",
            version=F("version") + 1,
        )
        if written:
            return replaced, conn.status
        conn = None
    raise lease.LeaseLost(f"connection {connection_id} kept changing; the grant was not written")


def _revoke_replaced(conn: Connection, replaced: dict[str, str | None]) -> None:
    """The grant a reconnect replaced is still live at the provider: end it there."""
    if not any(replaced.values()) or not conn.app.endpoint("revoke_url"):
        return
    revoked, error = revoke_tokens(conn.app, replaced)
    outcome = (
        "revoked at the provider"
        if error is None
        else f"the provider did not confirm its revocation ({error.describe()})"
    )
    audit.record(
        Kind.GRANT_REPLACED,
        tenant=conn.tenant,
        connection=conn,
        message=f"Reconnected: the grant it replaced was {outcome}.",
        revoked=sorted(k for k in revoked if k != "refresh_token_hash"),
    )


class AccountNotAllowed(Exception):
    """The grant is for an account outside the app's account ids: nothing was stored."""


def _check_account_allowed(app: PrivateApp, tokens: oauth.TokenSet, account: dict) -> None:
    """Seed 000 binds a private app to its account ids: a grant for another account, or one
    whose account the provider would not name (so it cannot be checked), is revoked where the
    provider can revoke, and never stored."""
    granted = account.get("account_id")
    if not app.account_ids or granted in app.account_ids:
        return
    revoke_tokens(app, {"refresh_token": tokens.refresh_token, "access_token": tokens.access_token})
    allowed = ", ".join(app.account_ids)
    if not granted:
        raise AccountNotAllowed(
            f"{app.catalogue.name} did not say which account was granted, so it cannot be "
            f"checked against this app's account ids ({allowed}). Nothing was stored: please "
            "connect again."
        )
    raise AccountNotAllowed(
        f"{app.catalogue.name} granted account {granted}, which is not one of this app's "
        f"account ids ({allowed}). Nothing was stored: connect again and choose one of those "
        "accounts, or ask an admin to add it to the app."
    )


def _same_account(app: PrivateApp, account_id: str | None, *, user=None) -> Connection | None:
    """The live connection the app already has for the account: connecting it again
    reconnects that one, keeping its id, instead of making a twin. A user connection is its
    owner's: another member's connection of the same (company) account stays theirs. A
    service account (user None) is the tenant's, whoever connects it."""
    if not account_id:
        return None
    kind = Connection.Kind.USER if user is not None else Connection.Kind.SERVICE
    live = Connection.objects.filter(app=app, kind=kind, account_id=account_id)
    if user is not None:
        live = live.filter(user=user)
    return live.exclude(status=Connection.Status.REVOKED).order_by("-created_at").first()


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
    tokens, secret = call_with_secrets(
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
    try:
        _check_account_allowed(app, tokens, account)
    except AccountNotAllowed as exc:
        audit.record(
            Kind.AUTHORIZE_FAILED, tenant=app.tenant, app=app, actor=attempt.user, message=str(exc)
        )
        raise
    target = attempt.connection
    if _other_account(target, account):
        message = (
            f"Connected: a reconnect of connection #{target.pk} granted another account "
            f"({account['account_id']}, not {target.account_id}), so it became this connection."
        )
        target = _same_account(app, account.get("account_id"), user=attempt.user)
    elif target is None:
        target = _same_account(app, account.get("account_id"), user=attempt.user)
        message = (
            "Reconnected: the account already had this connection." if target else "Connected."
        )
    else:
        message = "Reconnected."
    conn = _save_connection(
        app=app,
        kind=Connection.Kind.USER,
        tokens=tokens,
        connection=target,
        user=attempt.user,
        **account,
    )
    secret.record()
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
    tokens, secret = call_with_secrets(
        app, service_grant(app), rate_limit_wait=provider_calls.INTERACTIVE_RATE_LIMIT_WAIT
    )
    account = app.service_username or app.client_id
    conn = _save_connection(
        app=app,
        kind=Connection.Kind.SERVICE,
        tokens=tokens,
        connection=connection or _same_account(app, account),
        user=actor,
        account_id=account,
        account_name=account,
    )
    secret.record()
    audit.record(
        Kind.AUTHORIZED,
        tenant=app.tenant,
        connection=conn,
        actor=actor,
        request_id=tokens.request_id,
        message="Service-account token obtained.",
    )
    return conn


def _announce(conn: Connection, before: str | None) -> None:
    """A new connection is created; one that had stopped refreshing has recovered."""
    key = f"{conn.pk}:{conn.version}"
    if before is None or before == Connection.Status.REVOKED:
        emit(EventType.CREATED, connection=conn, key=f"created:{key}")
    elif before in (Connection.Status.NEEDS_REAUTH, Connection.Status.FAILING):
        emit(EventType.RECOVERED, connection=conn, key=f"recovered:{key}", was=before)


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
