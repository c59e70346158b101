"""The token-endpoint rate limit per client id: a fixed window counted on the Client row.

Every step is one conditional UPDATE, so threads and processes sharing the database cannot
admit more than the limit in a window (the WHERE clause is re-checked under the row lock).
"""

import math
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from sandbox.models import Client


def admit(client: Client) -> int | None:
    """None when the request is admitted, else the seconds to wait (for Retry-After)."""
    if client.rate_limit is None:
        return None
    rows = Client.objects.filter(pk=client.pk)
    # Three rounds: a racer may have just opened a new window, then our increment fits in it.
    for _ in range(3):
        now = timezone.now()
        window_open = now - timedelta(seconds=client.rate_window)
        if rows.filter(
            window_started_at__gt=window_open, window_count__lt=client.rate_limit
        ).update(window_count=F("window_count") + 1):
            return None
        if client.rate_limit > 0 and rows.filter(
            Q(window_started_at__isnull=True) | Q(window_started_at__lte=window_open)
        ).update(window_started_at=now, window_count=1):
            return None
    started = rows.values_list("window_started_at", flat=True).first() or now
    remaining = (started + timedelta(seconds=client.rate_window) - now).total_seconds()
    return max(1, math.ceil(remaining))
