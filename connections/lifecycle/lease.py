"""One writer per connection at a time: a lease taken by a compare-and-set UPDATE on `version`.

Works the same on SQLite and PostgreSQL and holds no transaction across the HTTP call. Lease
times come from the database's clock (every host reads the same one), never the app host's.
Before each request the lease must cover the request's whole deadline plus a margin: a
refresh's take covers a first request sent soon after it (`Cover`), and any other request is
preceded by an extension (`extend`); if the extension fails, the request is not sent. Only the
owner releases it; a lease whose worker died simply expires.
"""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connections, router
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from connections import egress
from connections.lifecycle import provider_calls
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


def _load():
    # order_by(): one row, and the model's ordering would be sorted for it all the same.
    return Connection.objects.select_related("app", "tenant").filter(pk=_slot("id")).order_by()


_LOAD = PreparedSelect(Connection, _load)
_LOAD_WITH_SECRETS = PreparedSelect(
    Connection, lambda: _load().annotate(app_secrets=provider_calls.secrets_of_the_app())
)


def load(connection_id: int) -> Connection:
    """The connection with its app and tenant, as a writer reads it before its compare-and-set
    (the refresh path's read: prepared); on PostgreSQL the app's active secrets come in the
    same statement, for its next provider call. Raises Connection.DoesNotExist."""
    with_secrets = connections[router.db_for_read(Connection)].vendor == "postgresql"
    found = (_LOAD_WITH_SECRETS if with_secrets else _LOAD).run(id=connection_id)
    if not found:
        raise Connection.DoesNotExist(f"connection {connection_id} does not exist")
    conn = found[0]
    if with_secrets:
        provider_calls.keep_loaded_secrets(conn.app, conn.__dict__.pop("app_secrets"))
    return conn


def acquire(conn: Connection, *, owner: str, seconds: float | None = None) -> bool:
    """Take the lease for `seconds` (REFRESH_LEASE_SECONDS unless given) only if the row is
    still the version the caller read and no live lease exists; records which refresh token
    is about to be sent (its hash). On success conn.version is the row's new version."""
    taken = _TAKE.run(
        id=conn.pk,
        version=conn.version,
        lease_owner=owner,
        inflight_refresh_hash=conn.refresh_token_hash,
        lasting=timedelta(
            seconds=settings.REFRESH_LEASE_SECONDS if seconds is None else seconds
        ),
    )
    if taken:
        conn.version += 1
        conn.lease_owner = owner
    return taken == 1


def extend(conn: Connection, *, owner: str) -> None:
    """Before a request: make the lease cover the request's whole deadline plus the margin,
    by compare-and-set on the version this holder last wrote. Raises LeaseLost."""
    extended = _EXTEND.run(
        id=conn.pk,
        lease_owner=owner,
        version=conn.version,
        lasting=timedelta(seconds=_extended_seconds()),
    )
    if not extended:
        raise LeaseLost(f"connection {conn.pk}: another writer took the lease")
    conn.version += 1


def _extended_seconds() -> float:
    return egress.deadline_seconds() + settings.LEASE_MARGIN_SECONDS


class Cover:
    """What a refresh runs before each of its requests (its before_send), over a take of
    `take_seconds()`: the request's deadline and the margin, plus a short window in which
    the first request may start (half the margin). A first request sent within the window is
    covered by the take, which ends no earlier than an extension made at the send would
    (`taken_at` is time.monotonic() read before the take, so the database's clock started the
    lease later) and at most the window later: a holder that dies after sending frees the
    connection about as soon. The extension's statement, a sixth of a refresh's, is spared.
    A writer that does not wait for leases (a reconnect's take-over, scopes being widened)
    can still land before that send exactly as it can while the request is on its way,
    where the store's compare-and-set on the generation settles it. Every other request (one
    held back by the rate limit past the window, a resend, the next secret) is preceded by an
    extension, which raises LeaseLost instead of sending."""

    def __init__(self, conn: Connection, *, owner: str, taken_at: float):
        self._conn, self._owner, self._taken_at = conn, owner, taken_at
        self._first = True

    @staticmethod
    def window_seconds() -> float:
        return settings.LEASE_MARGIN_SECONDS / 2

    @classmethod
    def take_seconds(cls) -> float:
        return _extended_seconds() + cls.window_seconds()

    def __call__(self) -> None:
        first, self._first = self._first, False
        if first and time.monotonic() - self._taken_at <= self.window_seconds():
            return
        extend(self._conn, owner=self._owner)


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
