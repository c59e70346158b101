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


def _due_again(now: datetime):
    """Due rows whose claim was lost: queued longer than ENQUEUE_TIMEOUT (the task never
    started), or leased by a worker that died (the lease lapsed by the database's clock).
    Rare, and found through indexes of their own (conn_queued_idx, conn_leased_idx)."""
    lapsed = ~Q(lease_owner="") & Q(lease_expires_at__lt=Now())
    lost = Q(lease_owner="", refresh_enqueued_at__lt=now - ENQUEUE_TIMEOUT)
    return Connection.objects.due(now).filter(lost | lapsed).order_by("next_refresh_at")


def _due_fresh(now: datetime):
    """Due, neither queued nor leased: the common case, read off conn_unqueued_due_idx,
    which leaves queued rows out, so a backlog of them does not slow the scan."""
    return (
        Connection.objects.due(now)
        .filter(refresh_enqueued_at__isnull=True, lease_owner="")
        .order_by("next_refresh_at")
    )


def _pick(rows, limit: int) -> list[int]:
    if limit <= 0:
        return []
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return list(rows.values_list("pk", flat=True)[:limit])


def connections_due(*, now: datetime, limit: int) -> list[int]:
    """The ids the picker would claim now: lost claims first (the longest overdue), then
    the oldest due (a read: nothing is marked)."""
    again = list(_due_again(now).values_list("pk", flat=True)[:limit])
    return again + list(_due_fresh(now).values_list("pk", flat=True)[: limit - len(again)])


def connections_claim_due(*, now: datetime, limit: int) -> list[int]:
    """Mark up to `limit` due connections as queued and return their ids. One statement
    picks them: on PostgreSQL the rows are locked, skipping rows a concurrent picker holds;
    on SQLite the IMMEDIATE transaction already serialises pickers."""
    with transaction.atomic():
        claimed = _pick(_due_again(now), limit)
        claimed += _pick(_due_fresh(now), limit - len(claimed))
        Connection.objects.filter(pk__in=claimed).update(refresh_enqueued_at=now)
    return claimed


def connection_unclaim(connection_id: int) -> None:
    """The queued refresh ran (whatever its outcome): the next beat may pick the row again."""
    Connection.objects.filter(pk=connection_id).update(refresh_enqueued_at=None)
