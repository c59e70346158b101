"""One writer per connection at a time: a lease taken by a compare-and-set UPDATE on `version`.

Works the same on SQLite and PostgreSQL and holds no transaction across the HTTP call. Lease
times come from the database's clock (every host reads the same one), never the app host's.
A holder extends the lease before each request so that it covers the request's whole
deadline plus a margin (`extend`); if the extension fails, the request is not sent. Only the
owner releases it; a lease whose worker died simply expires.
"""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from connections import egress
from connections.models import Connection

# How often a caller waiting for another owner's lease looks again.
POLL_SECONDS = 0.05
# Each try loses only to a write that landed between its read and its UPDATE.
TAKE_OVER_TRIES = 20


class LeaseLost(Exception):
    """The lease could not be extended: another writer took the row. Nothing was sent."""


def new_owner() -> str:
    return uuid.uuid4().hex


def db_now_plus(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(
        Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField()
    )


def free() -> Q:
    """No live lease on the row, by the database's clock."""
    return Q(lease_owner="") | Q(lease_expires_at__lt=Now())


def acquire(conn: Connection, *, owner: str) -> bool:
    """Take the lease only if the row is still the version the caller read and no live lease
    exists; records which refresh token is about to be sent (its hash). On success
    conn.version is the row's new version."""
    taken = Connection.objects.filter(free(), pk=conn.pk, version=conn.version).update(
        lease_owner=owner,
        lease_expires_at=db_now_plus(settings.REFRESH_LEASE_SECONDS),
        inflight_refresh_hash=conn.refresh_token_hash,
        version=F("version") + 1,
    )
    if taken:
        conn.version += 1
        conn.lease_owner = owner
    return taken == 1


def extend(conn: Connection, *, owner: str) -> None:
    """Before a request: make the lease cover the request's whole deadline plus the margin,
    by compare-and-set on the version this holder last wrote. Raises LeaseLost."""
    seconds = egress.deadline_seconds() + settings.LEASE_MARGIN_SECONDS
    extended = Connection.objects.filter(
        pk=conn.pk, lease_owner=owner, version=conn.version
    ).update(lease_expires_at=db_now_plus(seconds), version=F("version") + 1)
    if not extended:
        raise LeaseLost(f"connection {conn.pk}: another writer took the lease")
    conn.version += 1


def release(connection_id: int, *, owner: str) -> None:
    Connection.objects.filter(pk=connection_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None, inflight_refresh_hash="", version=F("version") + 1
    )


def acquire_waiting(connection_id: int, *, owner: str, wait_seconds: float) -> Connection | None:
    """Take the lease, waiting up to wait_seconds for another owner to let go; the connection
    as read under the lease, or None. Raises Connection.DoesNotExist."""
    deadline = time.monotonic() + wait_seconds
    while True:
        conn = Connection.objects.select_related("app", "tenant").get(pk=connection_id)
        if acquire(conn, owner=owner):
            return conn
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_SECONDS)


def take_over(connection_id: int, *, owner: str) -> Connection:
    """Take the lease from a holder that kept it past a bounded wait (Reconnect must write its
    new grant). The holder's next extension fails, so it sends nothing more; an answer it
    still gets is an older generation, which the store never lets overwrite this one."""
    for _ in range(TAKE_OVER_TRIES):
        conn = Connection.objects.select_related("app", "tenant").get(pk=connection_id)
        taken = Connection.objects.filter(pk=conn.pk, version=conn.version).update(
            lease_owner=owner,
            lease_expires_at=db_now_plus(settings.REFRESH_LEASE_SECONDS),
            inflight_refresh_hash="",
            version=F("version") + 1,
        )
        if taken:
            conn.version += 1
            conn.lease_owner = owner
            return conn
    raise LeaseLost(f"connection {connection_id} changed {TAKE_OVER_TRIES} times in a row")
