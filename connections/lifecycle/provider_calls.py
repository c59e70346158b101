"""Calling the token endpoint with the app's secrets: primary first, the next on
invalid_client; a call that got no answer is sent again promptly with the same grant.

Every request, retries and secondary secrets included, takes a slot of the provider's
rate limit for the client id: the provider counts them all. Revocations take slots of the same
window: seed 003 gives the token and revoke endpoints 60 / min per client id each, and one
shared window never exceeds that, whether Manus counts them together or apart."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DatabaseError, router
from django.db.models import F, OuterRef
from django.db.models.functions import JSONObject
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connections import audit, metrics, oauth, ratelimit
from connections.models import AuditEvent, ClientSecret, Connection, PrivateApp
from connections.oauth import Credentials, ErrorKind, ProviderError, TokenSet
from connections.prepared import PreparedSelect, Slot
from connections.providers import Grant, PkceMode
from portal.fields import EncryptedTextField, Sealed

# One resend after no answer at all: the request may never have reached the provider.
TRANSPORT_RETRIES = 1
# Someone is waiting in the browser (connect, disconnect): hold a request back this long at
# most for the provider's rate limit, then say so.
INTERACTIVE_RATE_LIMIT_WAIT = 10.0
T = TypeVar("T")
log = logging.getLogger(__name__)


def secrets_to_try(app: PrivateApp) -> list[str | None]:
    return [s.value if s else None for s in _secret_rows(app)]


_ACTIVE_SECRETS = PreparedSelect(
    ClientSecret, lambda: ClientSecret.active_of(Slot("app", ClientSecret._meta.get_field("app")))
)


_SECRET_FIELDS = ClientSecret._meta.concrete_fields
_SECRET_COLUMNS = [f.attname for f in _SECRET_FIELDS]


def secrets_of_the_app() -> ArraySubquery:
    """For a load of connections (PostgreSQL): its app's active secrets in the order to try,
    each as a JSON object of its columns (the secret still encrypted), in the same statement.
    A refresh read them in a statement of their own, a fifteenth of its CPU."""
    columns = JSONObject(**{f.attname: F(f.attname) for f in _SECRET_FIELDS})
    return ArraySubquery(ClientSecret.active_of(OuterRef("app_id")).values(row=columns))


def keep_loaded_secrets(app: PrivateApp, rows: list[dict]) -> None:
    """The secrets a load brought (secrets_of_the_app), for the app's next call only: a
    later call reads them afresh."""
    alias = router.db_for_read(ClientSecret)
    secrets = []
    for row in rows:
        values = [
            (Sealed(row[f.attname]) if row[f.attname] is not None else None)
            if isinstance(f, EncryptedTextField)
            else f.to_python(row[f.attname])
            for f in _SECRET_FIELDS
        ]
        secret = ClientSecret.from_db(alias, _SECRET_COLUMNS, values)
        secret.app = app
        secrets.append(secret)
    app._loaded_secrets = secrets


def _secret_rows(app: PrivateApp) -> list[ClientSecret | None]:
    if not PkceMode(app.pkce_mode).needs_secret:
        return [None]
    rows = app.__dict__.pop("_loaded_secrets", None)
    if rows is None:
        rows = _ACTIVE_SECRETS.run(app=app.pk)
        for secret in rows:
            secret.app = app  # as app.client_secrets would set it, without a query
    return rows or [None]


@dataclass(frozen=True)
class SecretOutcome:
    """Which of the app's secrets (in the order tried) the provider accepted."""

    app: PrivateApp
    tried: list[ClientSecret | None]
    index: int

    @property
    def fell_back(self) -> bool:
        return self.index > 0

    def record(self) -> None:
        """After the tokens are stored: the secrets before the accepted one were refused, which
        is marked on them (the app page shows it) and audited the first time; a refused secret
        that is accepted again is clear. Nothing to write in the usual case."""
        try:
            self._record()
        except DatabaseError:
            # The tokens are stored: a note about the secrets must not turn that into a failure.
            log.exception("could not record which secret of app %s was accepted", self.app.pk)

    def _record(self) -> None:
        accepted = self.tried[self.index]
        if accepted is not None and accepted.rejected_at:
            ClientSecret.objects.filter(pk=accepted.pk).update(rejected_at=None)
        for refused in self.tried[: self.index]:
            if refused is None or refused.rejected_at:
                continue
            first = ClientSecret.objects.filter(pk=refused.pk, rejected_at__isnull=True).update(
                rejected_at=timezone.now()
            )
            if first and accepted is not None:
                audit.record(
                    AuditEvent.Kind.SECRET_REJECTED,
                    tenant=self.app.tenant,
                    app=self.app,
                    message=f"{self.app.catalogue.name} refused secret {refused.masked} "
                    f"(invalid_client) and accepted {accepted.masked}: replace or revoke "
                    f"{refused.masked}.",
                    secret_id=refused.pk,
                )


def within_rate_limit(
    app: PrivateApp,
    send: Callable[[], T],
    *,
    max_wait: float,
    before_send: Callable[[], None] | None = None,
) -> T:
    """Send once a slot of the app's limit is free (waiting up to max_wait seconds); a
    ProviderError that is `held_back` when none frees up in time. `before_send` runs after
    the wait, right before the request (a refresh extends its lease there, or raises)."""
    limit = app.rate_limit()
    started = time.monotonic()
    slot = ratelimit.acquire(ratelimit.key_for(app), limit, max_wait=max_wait)
    if slot is None or slot.waited:
        metrics.inc(metrics.RATE_LIMIT_WAITS, app.provider)
        metrics.inc(
            metrics.RATE_LIMIT_WAIT_SECONDS, app.provider, amount=time.monotonic() - started
        )
    if slot is None:
        raise ProviderError(
            ErrorKind.RATE_LIMITED,
            f"held back by the portal: the provider allows {limit.requests} requests per "
            f"{limit.per_seconds:g} s for this client id and none was free within "
            f"{max_wait:g} s",
            retry_after=max_wait,
        )
    try:
        if before_send is not None:
            before_send()
        return send()
    finally:
        slot.settle()


# No locals in error reports, here or below: the secrets, the credentials built from them,
# and the grant's refresh token or service password.
@sensitive_variables()
def call_with_secrets(
    app: PrivateApp,
    call: Callable[[Credentials], TokenSet],
    *,
    rate_limit_wait: float,
    before_send: Callable[[], None] | None = None,
) -> tuple[TokenSet, "SecretOutcome"]:
    """Returns the tokens and which secret the provider accepted (record() that once the
    tokens are stored).
    Waits up to rate_limit_wait seconds for each request's rate-limit slot; `before_send`
    runs before every request: first try, resend, next secret."""
    rejected: ProviderError | None = None
    unanswered: list[ProviderError] = []
    rows = _secret_rows(app)
    for index, secret in enumerate(rows):
        creds = oauth.credentials_for(app, secret.value if secret else None)
        for attempt in range(TRANSPORT_RETRIES + 1):
            try:
                tokens = within_rate_limit(
                    app, partial(call, creds), max_wait=rate_limit_wait, before_send=before_send
                )
            except ProviderError as exc:
                if exc.held_back and unanswered:
                    # The grant went out and no answer came back: that is what the caller
                    # must know, so it re-sends the same grant later.
                    unanswered[-1].unanswered_before = len(unanswered)
                    raise unanswered[-1] from exc
                if exc.kind == ErrorKind.TRANSPORT and attempt < TRANSPORT_RETRIES:
                    unanswered.append(exc)
                    time.sleep(0.2 * 2**attempt)
                    continue
                if exc.kind == ErrorKind.INVALID_CLIENT:
                    rejected = exc
                    break
                # Lets the caller explain an invalid_grant that follows an unanswered call.
                exc.unanswered_before = len(unanswered)
                raise
            return tokens, SecretOutcome(app, rows, index)
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
