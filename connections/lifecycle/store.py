"""The write that records a provider's answer: first, before any other work, by generation.

An answer belongs to the generation of the refresh token that was sent for it. It is stored
only over that same generation (a compare-and-set on `refresh_token_hash`), so an answer that
arrives late, after a reconnect, a disconnect or another refresh moved the connection on,
never overwrites a newer pair. Such an orphaned pair is still live at the provider: it is
revoked there when the provider can revoke, and is an audit event either way.

The tokens exist only in memory until this write succeeds. When the database refuses it, the
answer goes to the spool before the first retry, and the write is retried with backoff for
STORE_RETRY_SECONDS; workers replay the spool at start and on every beat.
"""

import functools
import logging
import time
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import (
    Case,
    DateTimeField,
    F,
    Q,
    Value,
    When,
)
from django.utils import timezone

from connections import audit
from connections.lifecycle import lease, spool
from connections.lifecycle.revoke import revoke_tokens
from connections.lifecycle.schedule import next_refresh_at
from connections.models import AuditEvent, Connection, PrivateApp, sha256_hex
from connections.oauth import TokenSet
from connections.prepared import PreparedUpdate, PreparedUpdateWithRow, Slot

log = logging.getLogger(__name__)
Status = Connection.Status
# Backoff between store retries: doubling from the first, capped.
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 0.2, 10.0


class Stored(StrEnum):
    STORED = "stored"
    ALREADY = "already"  # an earlier try committed although its answer was lost
    ORPHANED = "orphaned"  # the connection moved on (or is gone): the pair was revoked


class StoreFailed(Exception):
    """The database refused the write for STORE_RETRY_SECONDS; the answer stays spooled."""


def token_fields(
    *, app: PrivateApp, kind: str, tokens: TokenSet, refresh_expires_at, now: datetime
) -> dict:
    """Column values for a fresh token set, counted from `now` (when the provider answered);
    expiry defaults come from the catalogue."""
    provider = app.catalogue
    # No (or a nonsensical) expires_in: the catalogue's lifetime for this provider.
    access_expires_at = now + (
        timezone.timedelta(seconds=tokens.expires_in)
        if tokens.expires_in and tokens.expires_in > 0
        else provider.access_lifetime
    )
    fields = {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "access_expires_at": access_expires_at,
        "status": Status.ACTIVE,
        "failure_count": 0,
        "last_error": "",
        "last_refreshed_at": now,
        "refresh_enqueued_at": None,
    }
    if tokens.refresh_token:
        refresh_expires_at = now + provider.refresh_lifetime if provider.refresh_lifetime else None
        fields["refresh_token"] = tokens.refresh_token
        fields["refresh_token_hash"] = sha256_hex(tokens.refresh_token)
        fields["refresh_expires_at"] = refresh_expires_at
    if tokens.scope:
        fields["scope"] = tokens.scope
    fields["next_refresh_at"] = next_refresh_at(
        app=app,
        kind=kind,
        now=now,
        access_expires_at=access_expires_at,
        refresh_expires_at=refresh_expires_at,
    )
    return fields


def _slot(name: str, column: str | None = None) -> Slot:
    return Slot(name, Connection._meta.get_field(column or name))


# Marked while the answer was on its way (scopes widened, disconnected): the mark stands...
_HELD = ("status", "next_refresh_at", "last_error", "failure_count")


@functools.cache
def _store_statement(columns: frozenset[str]) -> PreparedUpdate:
    """The write of token_fields' `columns` (a new refresh token and a scope come only with
    some answers: one compiled statement per shape), over the generation sent, releasing the
    lease in the same write if `owner` still holds it."""

    def build():
        ours = Q(lease_owner=_slot("owner", "lease_owner"))
        revoked = Q(status=Status.REVOKED)
        held = Q(status__in=[Status.REVOKED, Status.NEEDS_REAUTH])
        rows = Connection.objects.filter(
            pk=_slot("id"), refresh_token_hash=_slot("sent_hash", "refresh_token_hash")
        )
        return rows, {
            **{name: _slot(name) for name in columns - set(_HELD)},
            "status": Case(When(held, then=F("status")), default=_slot("status")),
            # ...and so does its cause: the pair stored here is what Reconnect will revoke.
            "last_error": Case(When(held, then=F("last_error")), default=_slot("last_error")),
            "failure_count": Case(
                When(held, then=F("failure_count")), default=_slot("failure_count")
            ),
            "next_refresh_at": Case(When(held, then=Value(None)), default=_slot("next_refresh_at")),
            # A late answer stored into a disconnected row is revoked at the next beat.
            "revoke_retry_at": Case(
                When(revoked, then=_slot("now", "revoke_retry_at")),
                default=F("revoke_retry_at"),
                output_field=DateTimeField(),
            ),
            "lease_owner": Case(When(ours, then=Value("")), default=F("lease_owner")),
            "lease_expires_at": Case(When(ours, then=Value(None)), default=F("lease_expires_at")),
            "inflight_refresh_hash": Case(
                When(ours, then=Value("")), default=F("inflight_refresh_hash")
            ),
            "refresh_count": F("refresh_count") + 1,
            "version": F("version") + 1,
        }

    return PreparedUpdate(Connection, build)


@functools.cache
def _store_with_event(columns: frozenset[str]) -> PreparedUpdateWithRow:
    """The store and, in the same statement, the audit event that says it happened."""
    return PreparedUpdateWithRow(_store_statement(columns), audit.ROW)


def _write(
    conn: Connection,
    tokens: TokenSet,
    *,
    sent_hash: str,
    owner: str,
    answered,
    event: dict | None = None,
) -> Stored:
    fields = token_fields(
        app=conn.app,
        kind=conn.kind,
        tokens=tokens,
        refresh_expires_at=conn.refresh_expires_at,
        now=answered,
    )
    columns = frozenset(fields)
    values = {"id": conn.pk, "sent_hash": sent_hash, "owner": owner, "now": timezone.now()}
    if event is None:
        updated = _store_statement(columns).run(**values, **fields)
    else:
        updated = _store_with_event(columns).run(update={**values, **fields}, row=event)
    if updated:
        return Stored.STORED
    now_hash = Connection.objects.filter(pk=conn.pk).values_list("refresh_token_hash", flat=True)
    current = now_hash.first()
    if tokens.refresh_token and current == fields.get("refresh_token_hash"):
        return Stored.ALREADY
    return Stored.ORPHANED


def store_answer(
    *,
    conn: Connection,
    tokens: TokenSet,
    sent_hash: str,
    owner: str,
    answered: datetime | None = None,
    spooled: spool.Entry | None = None,
    event: dict | None = None,
) -> Stored:
    """Store `tokens` over the generation `sent_hash`; in the same write release the lease if
    `owner` still holds it, and record `event` (audit.row()'s values) if the tokens are
    stored (ALREADY too: what stored them did not say so). Never loses the answer: see the
    module docstring."""
    answered = answered or timezone.now()
    give_up = time.monotonic() + settings.STORE_RETRY_SECONDS
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            result = _write(
                conn, tokens, sent_hash=sent_hash, owner=owner, answered=answered, event=event
            )
            break
        except DatabaseError:
            log.warning("storing tokens for connection %s failed; retrying", conn.pk, exc_info=True)
            connection.close()  # the next try opens a fresh connection
            if spooled is None:
                spooled = spool.keep(
                    connection_id=conn.pk,
                    sent_hash=sent_hash,
                    tokens=tokens,
                    answered=answered,
                    owner=owner,
                )
            if time.monotonic() > give_up:
                raise StoreFailed(
                    f"could not store new tokens for connection {conn.pk}; kept in the spool "
                    f"as {spooled.name}"
                ) from None
            time.sleep(delay)
            delay = min(MAX_RETRY_SECONDS, delay * 2)
    if result == Stored.ORPHANED:
        _revoke_orphan(conn, tokens)
    elif result == Stored.ALREADY and event is not None:
        audit.ROW.run(**event)
    if spooled is not None:
        _spool_used(conn, spooled, result)
    return result


def _revoke_orphan(conn: Connection, tokens: TokenSet) -> None:
    revoked, error = revoke_tokens(
        conn.app, {"refresh_token": tokens.refresh_token, "access_token": tokens.access_token}
    )
    if not conn.app.endpoint("revoke_url"):
        outcome = "the provider has no revocation endpoint; it lapses when it expires"
    elif error is None:
        outcome = "revoked at the provider"
    else:
        outcome = f"the provider did not confirm its revocation ({error.describe()})"
    if not Connection.objects.filter(pk=conn.pk).exists():
        log.error("a late answer for deleted connection %s was %s", conn.pk, outcome)
        return
    audit.record(
        AuditEvent.Kind.TOKENS_ORPHANED,
        tenant=conn.tenant,
        connection=conn,
        request_id=tokens.request_id,
        message=(
            "A refresh answered after the connection had moved on (reconnected, disconnected "
            f"or refreshed elsewhere); the pair it brought was not stored: {outcome}."
        ),
        revoked=sorted(revoked),
    )


def _spool_used(conn: Connection, entry: spool.Entry, result: Stored) -> None:
    spool.drop(entry)
    try:
        audit.record(
            AuditEvent.Kind.TOKENS_SPOOLED,
            tenant=conn.tenant,
            connection=conn,
            message=(
                f"The database refused the tokens the provider sent at {entry.answered_at}; "
                f"they waited in the spool ({entry.name}) and were then {result.value}."
            ),
            spool_entry=entry.name,
            result=result.value,
        )
    except DatabaseError:
        log.exception("spool use for connection %s stored but not audited", conn.pk)


def replay_spool(connection_id: int | None = None) -> int:
    """Store what the spool holds (all of it, or one connection's); the number of answers
    stored (an orphaned one, of an older generation, is revoked and not counted). An entry
    whose write the database still refuses stays for the next replay. Cheap when the spool is
    empty (one directory scan and one HLEN), as it nearly always is: the beat calls it, and
    a refresh whose row carries an earlier holder's in-flight mark."""
    if spool.is_empty():
        return 0
    settled = 0
    for entry in spool.entries(connection_id):
        try:
            conn = lease.load(entry.connection_id)
        except Connection.DoesNotExist:
            log.error("spooled tokens for deleted connection %s dropped", entry.connection_id)
            spool.drop(entry)
            continue
        except DatabaseError:
            log.warning("database unavailable; the token spool waits", exc_info=True)
            return settled
        try:
            result = _write_spooled(conn, entry)
        except DatabaseError:
            log.warning("database refused spooled tokens of %s; kept", conn.pk, exc_info=True)
            continue
        settled += result != Stored.ORPHANED
    return settled


def _write_spooled(conn: Connection, entry: spool.Entry) -> Stored:
    tokens = entry.tokens()
    result = _write(
        conn, tokens, sent_hash=entry.sent_hash, owner=entry.owner, answered=entry.answered
    )
    if result == Stored.ORPHANED:
        _revoke_orphan(conn, tokens)
    _spool_used(conn, entry, result)
    return result
