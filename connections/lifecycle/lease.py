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
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from connections import egress
from connections.models import Connection
from connections.prepared import PreparedSelect, PreparedUpdate, Slot

# How often a caller waiting for another owner's lease looks again.
POLL_SECONDS = 0.05
# Each try loses only to a write that landed between its read and its UPDATE.
TAKE_OVER_TRIES = 20


class LeaseLost(Exception):
    """The lease could not be extended: another writer took the row. Nothing was sent."""


def new_owner() -> str:
    return uuid.uuid4().hex


def db_now_plus(seconds) -> ExpressionWrapper:
    """The database's clock plus `seconds` (a number, or a Slot of a DurationField)."""
    later = seconds if isinstance(seconds, Slot) else Value(timedelta(seconds=seconds))
    return ExpressionWrapper(Now() + later, output_field=DateTimeField())


def free() -> Q:
    """No live lease on the row, by the database's clock."""
    return Q(lease_owner="") | Q(lease_expires_at__lt=Now())


def _slot(name: str) -> Slot:
    return Slot(name, Connection._meta.get_field(name))


_LASTING = Slot("lasting", DurationField())  # how long the lease lasts from now
_TAKE = PreparedUpdate(
    Connection,
    lambda: (
        Connection.objects.filter(free(), pk=_slot("id"), version=_slot("version")),
        {
            "lease_owner": _slot("lease_owner"),
            "lease_expires_at": db_now_plus(_LASTING),
            "inflight_refresh_hash": _slot("inflight_refresh_hash"),
            "version": F("version") + 1,
        },
    ),
)
_EXTEND = PreparedUpdate(
    Connection,
    lambda: (
        Connection.objects.filter(
            pk=_slot("id"), lease_owner=_slot("lease_owner"), version=_slot("version")
        ),
        {"lease_expires_at": db_now_plus(_LASTING), "version": F("version") + 1},
    ),
)
_RELEASE = PreparedUpdate(
    Connection,
    lambda: (
        Connection.objects.filter(pk=_slot("id"), lease_owner=_slot("lease_owner")),
        {
            "lease_owner": "",
            "lease_expires_at": None,
            "inflight_refresh_hash": "",
            "version": F("version") + 1,
        },
    ),
)


_LOAD = PreparedSelect(
    Connection, lambda: Connection.objects.select_related("app", "tenant").filter(pk=_slot("id"))
)


def load(connection_id: int) -> Connection:
    """The connection with its app and tenant, as a writer reads it before its compare-and-set
    (the refresh path's read: prepared). Raises Connection.DoesNotExist."""
    found = _LOAD.run(id=connection_id)
    if not found:
        raise Connection.DoesNotExist(f"connection {connection_id} does not exist")
    return found[0]


def acquire(conn: Connection, *, owner: str) -> bool:
    """Take the lease only if the row is still the version the caller read and no live lease
    exists; records which refresh token is about to be sent (its hash). On success
    conn.version is the row's new version."""
    taken = _TAKE.run(
        id=conn.pk,
        version=conn.version,
        lease_owner=owner,
        inflight_refresh_hash=conn.refresh_token_hash,
        lasting=timedelta(seconds=settings.REFRESH_LEASE_SECONDS),
    )
    if taken:
        conn.version += 1
        conn.lease_owner = owner
    return taken == 1


def extend(conn: Connection, *, owner: str) -> None:
    """Before a request: make the lease cover the request's whole deadline plus the margin,
    by compare-and-set on the version this holder last wrote. Raises LeaseLost."""
    seconds = egress.deadline_seconds() + settings.LEASE_MARGIN_SECONDS
    extended = _EXTEND.run(
        id=conn.pk,
        lease_owner=owner,
        version=conn.version,
        lasting=timedelta(seconds=seconds),
    )
    if not extended:
        raise LeaseLost(f"connection {conn.pk}: another writer took the lease")
    conn.version += 1


def release(connection_id: int, *, owner: str) -> None:
    _RELEASE.run(id=connection_id, lease_owner=owner)


def acquire_waiting(connection_id: int, *, owner: str, wait_seconds: float) -> Connection | None:
    """Take the lease, waiting up to wait_seconds for another owner to let go; the connection
    as read under the lease, or None. Raises Connection.DoesNotExist."""
    deadline = time.monotonic() + wait_seconds
    while True:
        conn = load(connection_id)
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
        conn = load(connection_id)
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
