"""The hourly roll-up of refreshes and failures that the report's chart reads.

A periodic task recounts the last hours from the audit trail (indexed on kind and time) and
writes one row per tenant and hour. Recounting, not incrementing, makes it idempotent: a tick
that runs twice, or late, writes the same numbers. Nothing on the refresh path writes here.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from connections.models import ActivityHour, AuditEvent

Kind = AuditEvent.Kind
#: each tick recounts this many hours back (the current one included), so an event written
#: late, or a tick that was missed, is still counted
RECOUNT_HOURS = 3
#: the first roll-up on a database fills the chart's whole window
BACKFILL_HOURS = 7 * 24


def roll_up(*, now: datetime | None = None, hours: int | None = None) -> int:
    """Recount the last `hours` hours (BACKFILL_HOURS on an empty table); rows written."""
    now = now or timezone.now()
    if hours is None:
        hours = RECOUNT_HOURS if ActivityHour.objects.exists() else BACKFILL_HOURS
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    counts = (
        AuditEvent.objects.filter(
            kind__in=[Kind.REFRESHED, Kind.REFRESH_FAILED], created_at__gte=start
        )
        .order_by()
        .annotate(hour=TruncHour("created_at"))
        .values("tenant_id", "hour")
        .annotate(
            refreshed=Count("id", filter=Q(kind=Kind.REFRESHED)),
            failed=Count("id", filter=Q(kind=Kind.REFRESH_FAILED)),
        )
    )
    fresh = [
        ActivityHour(
            tenant_id=c["tenant_id"], hour=c["hour"], refreshed=c["refreshed"], failed=c["failed"]
        )
        for c in counts
    ]
    with transaction.atomic():
        # Hours that had events once and have none now (pruned) keep no stale row.
        ActivityHour.objects.filter(hour__gte=start).delete()
        ActivityHour.objects.bulk_create(fresh)
    return len(fresh)


def prune(*, before: datetime) -> int:
    deleted, _ = ActivityHour.objects.filter(hour__lt=before).delete()
    return deleted
