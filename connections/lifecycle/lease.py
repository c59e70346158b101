"""One refresh per connection at a time: a lease taken by a compare-and-set UPDATE.

Works the same on SQLite and PostgreSQL and holds no transaction across the HTTP call. The
lease outlives the HTTP timeouts (REFRESH_LEASE_SECONDS) and only its owner releases it; a
lease whose worker died simply expires.
"""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from connections.models import Connection

# How often a caller waiting for another owner's lease looks again.
POLL_SECONDS = 0.05


def new_owner() -> str:
    return uuid.uuid4().hex


def acquire(conn: Connection, *, owner: str) -> bool:
    """Take the lease only if the row is still the version the caller read and no live lease
    exists; records which refresh token is about to be sent (its hash)."""
    now = timezone.now()
    taken = (
        Connection.objects.filter(pk=conn.pk, version=conn.version)
        .filter(Q(lease_owner="") | Q(lease_expires_at__lt=now))
        .update(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=settings.REFRESH_LEASE_SECONDS),
            inflight_refresh_hash=conn.refresh_token_hash,
            version=F("version") + 1,
        )
    )
    return taken == 1


def release(connection_id: int, *, owner: str) -> None:
    Connection.objects.filter(pk=connection_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None, inflight_refresh_hash=""
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
