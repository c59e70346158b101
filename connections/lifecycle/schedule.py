"""When a connection should next be refreshed: computed from the data, spread with jitter."""

import random
from datetime import datetime, timedelta

from connections.models import Connection, PrivateApp


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
