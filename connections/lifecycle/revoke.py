"""Disconnect: revoke at the provider when it supports it, then erase the tokens."""

from functools import partial

from connections import audit, oauth
from connections.lifecycle import provider_calls
from connections.lifecycle.provider_calls import secrets_to_try, within_rate_limit
from connections.models import AuditEvent, Connection


def disconnect(*, conn: Connection, actor) -> str:
    """Returns a sentence for the user saying what happened at the provider."""
    app = conn.app
    outcome = "The provider has no revocation endpoint; the tokens were erased here."
    if app.endpoint("revoke_url"):
        creds = oauth.credentials_for(app, secrets_to_try(app)[0])
        try:
            for token, hint in (
                (conn.refresh_token, "refresh_token"),
                (conn.access_token, "access_token"),
            ):
                if token:
                    within_rate_limit(
                        app,
                        partial(oauth.revoke, app, creds, token=token, hint=hint),
                        max_wait=provider_calls.INTERACTIVE_RATE_LIMIT_WAIT,
                    )
            outcome = "Revoked at the provider and erased here."
        except oauth.ProviderError as exc:
            outcome = f"The provider did not confirm revocation ({exc.describe()}); the tokens were erased here."
    Connection.objects.filter(pk=conn.pk).update(
        status=Connection.Status.REVOKED,
        access_token=None,
        refresh_token=None,
        refresh_token_hash="",
        next_refresh_at=None,
        refresh_enqueued_at=None,
        access_expires_at=None,
        refresh_expires_at=None,
    )
    audit.record(
        AuditEvent.Kind.REVOKED, tenant=conn.tenant, connection=conn, actor=actor, message=outcome
    )
    return outcome
