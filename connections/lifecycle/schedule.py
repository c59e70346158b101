"""When a connection should next be refreshed (computed from the data, spread with jitter),
and the beat picker's claim on the connections that are due."""

import random
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now

from connections.models import Connection, PrivateApp

#: a claim older than this is presumed lost with its task (never started), and the row is
#: picked again; a task that started and died is noticed sooner, by its lapsed lease
ENQUEUE_TIMEOUT = timedelta(minutes=10)


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(high, value))


def next_refresh_at(
    *, app: PrivateApp, kind: str, now: datetime, access_expires_at, refresh_expires_at
) -> datetime | None:
    """The earliest of: before the access token expires (warm policy and service accounts),
    and well before the refresh token's own expiry (always), so it never lapses."""
    candidates = []
    warm = kind == Connection.Kind.SERVICE or app.refresh_policy == PrivateApp.RefreshPolicy.WARM
    if warm and access_expires_at:
        lifetime = access_expires_at - now
        margin = _clamp(lifetime * 0.2, timedelta(seconds=5), timedelta(minutes=5))
        # Jitter only ever moves a refresh earlier, never past the margin.
        candidates.append(access_expires_at - margin * (1 + random.uniform(0, 0.5)))  # noqa: S311
    if refresh_expires_at:
        remaining = refresh_expires_at - now
        candidates.append(refresh_expires_at - remaining * random.uniform(0.25, 0.3))  # noqa: S311
    return max(now, min(candidates)) if candidates else None


def backoff(failures: int, *, base: float = 30.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff with jitter (half to full of the exponential delay)."""
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))  # noqa: S311


def _due(now: datetime):
    """Due, refreshable, not under a live lease, and not already queued, unless the worker
    that took it died: its lease lapsed (by the database's clock) while it was queued."""
    lapsed = ~Q(lease_owner="") & Q(lease_expires_at__lt=Now())
    unqueued = (
        Q(refresh_enqueued_at__isnull=True)
        | Q(refresh_enqueued_at__lt=now - ENQUEUE_TIMEOUT)
        | lapsed
    )
    return (
        Connection.objects.due(now)
        .filter(Q(lease_owner="") | lapsed)
        .filter(unqueued)
        .order_by("next_refresh_at")
    )


def connections_due(*, now: datetime, limit: int) -> list[int]:
    """The ids the picker would claim now, oldest due first (a read: nothing is marked)."""
    return list(_due(now).values_list("pk", flat=True)[:limit])


def connections_claim_due(*, now: datetime, limit: int) -> list[int]:
    """Mark up to `limit` due connections as queued and return their ids. One statement
    picks them: on PostgreSQL the rows are locked, skipping rows a concurrent picker holds;
    on SQLite the IMMEDIATE transaction already serialises pickers."""
    with transaction.atomic():
        rows = _due(now)
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        claimed = list(rows.values_list("pk", flat=True)[:limit])
        Connection.objects.filter(pk__in=claimed).update(refresh_enqueued_at=now)
    return claimed


def connection_unclaim(connection_id: int) -> None:
    """The queued refresh ran (whatever its outcome): the next beat may pick the row again."""
    Connection.objects.filter(pk=connection_id).update(refresh_enqueued_at=None)
