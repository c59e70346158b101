"""Refreshing one connection: lease, rate limit, call, store first, then classify.

Order matters: the provider's answer is stored by store_answer before any event, e-mail or
API call. A refresh token is sent again only after a transport failure (no answer came back),
and only by the lease holder, after extending its lease over the request's whole deadline
(the take covers a first request sent right after it: lease.Cover).
"""

import logging
import time
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from connections import audit, metrics
from connections.lifecycle import lease
from connections.lifecycle.provider_calls import call_with_secrets, renewal_call
from connections.lifecycle.schedule import backoff
from connections.lifecycle.store import Stored, StoreFailed, replay_spool, store_answer
from connections.models import AuditEvent, Connection, PrivateApp
from connections.notify import connection_path, tell
from connections.oauth import ErrorKind, ProviderError
from connections.side_effects import after_lease
from connections.webhook_events import EventType, emit

log = logging.getLogger(__name__)
Kind = AuditEvent.Kind
Status = Connection.Status
RATE_LIMIT_MAX_WAIT = 30.0


class Outcome(StrEnum):
    REFRESHED = "refreshed"
    FRESH = "fresh"  # nothing to do: the token is valid or not yet due
    SUPERSEDED = "superseded"  # another worker refreshed first; its tokens stand
    BUSY = "busy"  # another worker holds the lease
    SKIPPED = "skipped"  # not refreshable (revoked, needs re-authorisation, app disabled)
    RETRY_SCHEDULED = "retry_scheduled"
    NEEDS_REAUTH = "needs_reauth"
    APP_CREDENTIALS_INVALID = "app_credentials_invalid"


def refresh_connection(connection_id: int, *, reason: str, force: bool = False) -> Outcome:
    """reason "scheduled" refreshes only when due; "on_demand" only when the access token is
    no longer valid; force (a person clicked Refresh) always."""
    try:
        conn = lease.load(connection_id)
    except Connection.DoesNotExist:
        return Outcome.SKIPPED
    idle = _nothing_to_do(conn, reason=reason, force=force)
    if idle is not None:
        return idle
    owner, taken_at = lease.new_owner(), time.monotonic()
    if not lease.acquire(conn, owner=owner, seconds=lease.Cover.take_seconds()):
        return Outcome.BUSY
    outcome, spooled = None, False
    with after_lease():  # e-mails leave once the lease is let go
        try:
            cover = lease.Cover(conn, owner=owner, taken_at=taken_at)
            outcome = _refresh_under_lease(conn, owner=owner, reason=reason, cover=cover)
        except lease.LeaseLost:
            outcome = Outcome.BUSY  # another writer took the row; it decides what comes next
        except StoreFailed:
            # The answer waits in the spool. The lease and its in-flight mark stay until the
            # replay stores it (letting them go in the same write) or the lease lapses, and
            # the mark sends the next holder to the spool first.
            spooled = True
            raise
        finally:
            if outcome != Outcome.REFRESHED and not spooled:  # storing the tokens released it
                lease.release(conn.pk, owner=owner)
    metrics.inc(metrics.REFRESHES, conn.app.provider, outcome)
    return outcome


def _nothing_to_do(conn: Connection, *, reason: str, force: bool) -> Outcome | None:
    if not conn.is_refreshable or conn.app.status == PrivateApp.Status.DISABLED:
        return Outcome.SKIPPED
    if force:
        return None
    if (reason == "scheduled" and not conn.is_due(timezone.now())) or (
        reason != "scheduled" and conn.access_token_valid()
    ):
        return Outcome.FRESH
    return None


def _refresh_under_lease(
    conn: Connection, *, owner: str, reason: str, cover: lease.Cover
) -> Outcome:
    if conn.inflight_refresh_hash and replay_spool(conn.pk):
        # An earlier holder took the lease and never let it go: it died, or the database
        # refused its store and the answer, the newest tokens, went to the spool. Stored now,
        # so the old token is never sent. Only such a holder leaves a spooled answer newer
        # than the row (a refresh spools only under its lease; a store, a reconnect or the
        # holder's release clears the mark, and a holder whose store failed keeps it), so
        # a row without the mark is not looked up: the look-up was a twentieth of a refresh.
        return Outcome.SUPERSEDED
    now = timezone.now()
    if conn.kind == Connection.Kind.USER and not conn.refresh_token:
        return _needs_reauth(
            conn,
            "the provider issued no refresh token, so the access token "
            "cannot be renewed without the user",
            owner=owner,
        )
    if conn.refresh_expires_at and conn.refresh_expires_at <= now:
        return _needs_reauth(conn, "the refresh token expired before it was used", owner=owner)
    app = conn.app
    started = time.monotonic()
    try:
        tokens, secret = call_with_secrets(
            app,
            renewal_call(conn, app),
            rate_limit_wait=RATE_LIMIT_MAX_WAIT,
            before_send=cover,
        )
    except ProviderError as exc:
        metrics.observe(metrics.REFRESH_SECONDS, time.monotonic() - started, app.provider)
        metrics.inc(metrics.REFRESH_FAILURES, app.provider, exc.kind)
        return _classify(conn, exc, owner=owner)
    answered, took = timezone.now(), time.monotonic() - started
    stored = store_answer(  # first, before anything else (metrics included)
        conn=conn,
        tokens=tokens,
        sent_hash=conn.refresh_token_hash,
        owner=owner,
        answered=answered,
        event=audit.row(  # written with the tokens, in the same statement
            Kind.REFRESHED,
            tenant=conn.tenant,
            connection=conn,
            request_id=tokens.request_id,
            message=f"Tokens renewed ({reason})."
            + (
                " The primary secret was rejected; a secondary secret was accepted."
                if secret.fell_back
                else ""
            ),
            rotated=bool(tokens.refresh_token),
            reason=reason,
        ),
    )
    metrics.observe(metrics.REFRESH_SECONDS, took, app.provider)
    if stored == Stored.ORPHANED:
        return Outcome.SUPERSEDED
    if stored == Stored.ALREADY:
        # Stored by a spool replay (or an earlier try whose answer was lost), which may have
        # left this holder's lease: let it go now.
        lease.release(conn.pk, owner=owner)
    if app.credentials_invalid_at:
        PrivateApp.objects.filter(pk=app.pk).update(credentials_invalid_at=None)
    secret.record()
    emit(EventType.REFRESHED, connection=conn, reason=reason)
    # Failing when the refresh began, and active now: a mark written while the answer was on
    # its way (scopes widened) stands, and then nothing has recovered.
    if (
        conn.status == Status.FAILING
        and Connection.objects.filter(pk=conn.pk, status=Status.ACTIVE).exists()
    ):
        emit(EventType.RECOVERED, connection=conn, key=f"recovered:{conn.pk}:{conn.version}")
    _note_short_lived(conn, tokens)
    return Outcome.REFRESHED


def _note_short_lived(conn: Connection, tokens) -> None:
    """A provider that hands out access tokens already near expiry is recorded (the token API
    then serves them until they expire, refreshing at most once per floor), never chased."""
    floor = settings.ON_DEMAND_REFRESH_FLOOR
    if not tokens.expires_in or tokens.expires_in > floor:
        return
    audit.record(
        Kind.SHORT_LIVED_TOKEN,
        tenant=conn.tenant,
        connection=conn,
        request_id=tokens.request_id,
        message=(
            f"The provider sent an access token that expires in {tokens.expires_in} s; "
            f"on-demand refreshes stay at most one per {floor:g} s."
        ),
        expires_in=tokens.expires_in,
    )


def _classify(conn: Connection, exc: ProviderError, *, owner: str) -> Outcome:
    if exc.kind == ErrorKind.INVALID_GRANT:
        current = (
            Connection.objects.filter(pk=conn.pk)
            .values_list("refresh_token_hash", flat=True)
            .first()
        )
        if conn.kind == Connection.Kind.USER and current != conn.refresh_token_hash:
            return Outcome.SUPERSEDED  # another worker stored a newer token meanwhile
        why = "the provider rejected the refresh token (invalid_grant)"
        if conn.kind == Connection.Kind.SERVICE:
            why = "the provider rejected the service-account credentials (invalid_grant)"
        elif conn.inflight_refresh_hash and conn.inflight_refresh_hash == conn.refresh_token_hash:
            why += (
                "; an earlier refresh that sent this same token stopped (its worker died) "
                "before storing the answer, so the provider most likely consumed it"
            )
        elif conn.failure_count or exc.unanswered_before:
            earlier = conn.last_error or "the call timed out or the connection dropped"
            why += (
                " after an earlier attempt with the same token got no usable answer "
                f"({earlier}); the provider most likely consumed the token in a refresh "
                "whose reply was lost"
            )
        return _needs_reauth(conn, why, owner=owner, request_id=exc.request_id)
    if exc.kind == ErrorKind.INVALID_CLIENT:
        return _app_credentials_invalid(conn, exc, owner=owner)
    if exc.kind == ErrorKind.RATE_LIMITED:
        # Held back by the portal's own limiter, nothing was sent: due again at once, so the
        # next sweep claims it and it waits for a slot again (waiting out max_wait once more
        # made a wake-up burst drain a tenth slower). A provider's 429 says when, or 30 s.
        delay = timedelta(seconds=1 if exc.held_back else (exc.retry_after or 30) + 1)
        _schedule_retry(
            conn,
            owner,
            delay=delay,
            error=exc.describe(),
            request_id=exc.request_id,
            count_failure=False,
        )
        return Outcome.RETRY_SCHEDULED
    if exc.transient:
        _schedule_retry(
            conn,
            owner,
            delay=backoff(conn.failure_count + 1),
            error=exc.describe(),
            request_id=exc.request_id,
        )
        return Outcome.RETRY_SCHEDULED
    return _needs_reauth(
        conn,
        f"the provider refused the refresh: {exc.describe()}",
        owner=owner,
        request_id=exc.request_id,
    )


def _owned(conn: Connection, owner: str):
    """The row, only while this holder's lease and version stand (a writer that took the row
    meanwhile, such as a reconnect or scopes being widened, wins)."""
    return Connection.objects.filter(pk=conn.pk, lease_owner=owner, version=conn.version)


def _next_try(at) -> str:
    """When the retry really happens: the refresh sweep picks due connections up every
    REFRESH_BEAT_SECONDS, so a retry due in 15 s can come up to a sweep later."""
    local = timezone.localtime(at)
    return (
        f"Next try at the first sweep after {local:%H:%M:%S %Z} "
        f"(sweeps run every {settings.REFRESH_BEAT_SECONDS:g} s)."
    )


def _schedule_retry(
    conn, owner, *, delay: timedelta, error: str, request_id: str = "", count_failure: bool = True
) -> None:
    now = timezone.now()
    failures = conn.failure_count + (1 if count_failure else 0)
    still_valid = conn.access_expires_at is not None and conn.access_expires_at > now
    written = _owned(conn, owner).update(
        version=F("version") + 1,
        status=Status.ACTIVE if still_valid and not count_failure else Status.FAILING,
        failure_count=failures,
        last_error=error[:2000],
        next_refresh_at=now + delay,
        refresh_enqueued_at=None,
    )
    audit.record(
        Kind.REFRESH_FAILED,
        tenant=conn.tenant,
        connection=conn,
        request_id=request_id,
        message=f"Refresh failed: {error}. {_next_try(now + delay)}",
        failures=failures,
    )
    if not written:
        return  # another writer took the row meanwhile (a reconnect): its state stands
    emit(
        EventType.REFRESH_FAILED,
        connection=conn,
        error=error[:500],
        failures=failures,
        next_try_at=(now + delay).isoformat(),
    )


def _needs_reauth(conn, why: str, *, owner: str, request_id: str = "") -> Outcome:
    if replay_spool(conn.pk):
        return Outcome.SUPERSEDED  # the spool held the answer to the token just refused
    marked = _owned(conn, owner).update(
        version=F("version") + 1,
        status=Status.NEEDS_REAUTH,
        next_refresh_at=None,
        refresh_enqueued_at=None,
        last_error=why[:2000],
    )
    if not marked:
        return Outcome.SUPERSEDED  # another writer took the row meanwhile; its state stands
    audit.record(
        Kind.REAUTH_NEEDED,
        tenant=conn.tenant,
        connection=conn,
        request_id=request_id,
        message=f"Re-authorisation needed: {why}.",
    )
    emit(
        EventType.NEEDS_REAUTH,
        connection=conn,
        key=f"reauth:{conn.pk}:{conn.version + 1}",
        reason=why,
    )
    tell(
        tenant=conn.tenant,
        # the version the mark wrote: one alert per time the connection is marked
        key=f"reauth:{conn.pk}:{conn.version + 1}",
        owner_id=conn.user_id,
        subject=f"Connection to {conn.app.name} needs re-authorisation",
        body=f"{conn} stopped refreshing: {why}. Open it and click Reconnect.",
        path=connection_path(conn),
    )
    return Outcome.NEEDS_REAUTH


def _app_credentials_invalid(conn, exc: ProviderError, *, owner: str) -> Outcome:
    app, now = conn.app, timezone.now()
    first_time = PrivateApp.objects.filter(pk=app.pk, credentials_invalid_at__isnull=True).update(
        credentials_invalid_at=now
    )
    _schedule_retry(
        conn, owner, delay=timedelta(minutes=15), error=exc.describe(), request_id=exc.request_id
    )
    if first_time:
        audit.record(
            Kind.APP_CREDENTIALS_INVALID,
            tenant=conn.tenant,
            app=app,
            request_id=exc.request_id,
            message="The provider rejected every client secret of this app (invalid_client).",
        )
        emit(EventType.CREDENTIALS_REJECTED, app=app, key=f"credentials:{app.pk}:{now.isoformat()}")
        tell(
            tenant=conn.tenant,
            key=f"credentials:{app.pk}:{now.isoformat()}",
            subject=f"{app.name}: client credentials rejected",
            body="The provider answered invalid_client for every secret of this app. "
            "Check the client id and add the current secret.",
        )
    return Outcome.APP_CREDENTIALS_INVALID
