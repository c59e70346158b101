"""The token expiry report: what needs a person, counts, and the two charts' series.

Reads only, scoped by the caller's visible queryset (a tenant's connections, or a member's
own). The counts come from one grouped scan of the tenant's rows; the activity chart from the
hourly roll-up (connections.activity), never from the audit trail itself.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from connections.listing import Attention, attention_q, lapsing_q, page_rows
from connections.models import ActivityHour, AuditEvent, Connection, PrivateApp
from connections.providers import get_provider

Status = Connection.Status
#: examples shown under each "needs attention" heading; the rest is one click away
EXAMPLES = 5
EXPIRY_DAYS = 90
ACTIVITY_HOURS = 7 * 24
#: each heading's examples, soonest (or longest failing) first, in an order an index holds
EXAMPLE_ORDER = {
    Attention.NEEDS_REAUTH: ("refresh_expires_at", "id"),
    Attention.FAILING: ("last_refreshed_at", "id"),
    Attention.REVOKE_PENDING: ("revoke_retry_at", "id"),
    "lapsing_7": ("refresh_expires_at", "id"),
    "lapsing_30": ("refresh_expires_at", "id"),
    # by app: the (app, access_expires_at) index; one ordering across apps would walk every
    # expired token of the tenant's on-demand apps first
    Attention.COLD: ("app_id", "access_expires_at", "id"),
}


@dataclass
class Item:
    """One "needs attention" heading: how many, where the whole list is, what to do."""

    key: str
    title: str
    fix: str
    count: int
    query: dict
    examples: list = field(default_factory=list)
    severity: str = "warn"
    #: what the link to the whole list says, when it lists more than `count`
    link_text: str = ""

    @property
    def href(self) -> str:
        """The table filtered to these rows; empty for apps (each example links its app)."""
        return f"?{urlencode(self.query)}#table" if self.query else ""


@dataclass
class Summary:
    total: int = 0
    by_status: dict = field(default_factory=dict)
    by_provider: list = field(default_factory=list)  # (key, name, count)
    by_app: list = field(default_factory=list)  # (app id, name, provider name, count)
    attention: dict = field(default_factory=dict)
    #: of the active and failing, those whose app is disabled
    paused: int = 0

    @property
    def status_rows(self) -> list[tuple[str, str, int]]:
        return [(value, label, self.by_status[value]) for value, label in Status.choices]


def summary(qs: QuerySet[Connection], *, tenant, now: datetime) -> Summary:
    """Counts by status, provider and app, and each "needs attention" count. Each query reads
    one index of the tenant's rows (models.py), none the table itself."""
    qs = qs.order_by()
    result = Summary(by_status=dict.fromkeys(Connection.Status.values, 0))
    apps: dict[int, int] = {}
    live: dict[int, int] = {}  # refreshable, per app: those of a disabled app are paused
    # COUNT(*), not COUNT(id): the id is not in the index, and reading it means the table.
    for app_id, status, n in qs.values_list("app_id", "status").annotate(n=Count("*")):
        result.total += n
        result.by_status[status] += n
        apps[app_id] = apps.get(app_id, 0) + n
        if status in Connection.REFRESHABLE:
            live[app_id] = live.get(app_id, 0) + n
    lapsing = qs.filter(lapsing_q(now, 30)).aggregate(
        # the counted column is in the index and never empty here
        lapsing_30=Count("refresh_expires_at"),
        lapsing_7=Count(
            "refresh_expires_at", filter=Q(refresh_expires_at__lte=now + timedelta(days=7))
        ),
    )
    result.attention = {
        **lapsing,
        Attention.NEEDS_REAUTH: result.by_status[Connection.Status.NEEDS_REAUTH],
        Attention.FAILING: result.by_status[Connection.Status.FAILING],
        "revoke_pending": qs.filter(
            attention_q(Attention.REVOKE_PENDING, tenant=tenant, now=now)
        ).count(),
        "cold": qs.filter(attention_q(Attention.COLD, tenant=tenant, now=now)).count(),
    }
    providers: dict[str, int] = {}
    for app in PrivateApp.objects.filter(pk__in=apps).order_by("name"):
        if app.status == PrivateApp.Status.DISABLED:
            result.paused += live.get(app.pk, 0)
        name = get_provider(app.provider).name
        result.by_app.append((app.pk, app.name, name, apps[app.pk]))
        providers[app.provider] = providers.get(app.provider, 0) + apps[app.pk]
    result.by_provider = sorted(
        ((key, get_provider(key).name, n) for key, n in providers.items()), key=lambda p: p[1]
    )
    return result


def _failing_since(qs: QuerySet[Connection]) -> QuerySet[Connection]:
    """When the current run of failures began: the first failure after the last success."""
    first = (
        AuditEvent.objects.filter(
            connection=OuterRef("pk"),
            kind=AuditEvent.Kind.REFRESH_FAILED,
            created_at__gte=OuterRef("last_refreshed_at"),
        )
        .order_by()
        .values("connection")
        .annotate(first=Min("created_at"))
        .values("first")
    )
    return qs.annotate(failing_since=Subquery(first[:1]))


def attention(qs: QuerySet[Connection], *, tenant, counts: dict, now: datetime) -> list[Item]:
    """The headings with something under them, most urgent first, each with a few examples."""
    items = [
        Item(
            Attention.NEEDS_REAUTH,
            "Need re-authorisation",
            "The provider no longer accepts their refresh token: open each and click Reconnect.",
            counts[Attention.NEEDS_REAUTH],
            {"attention": Attention.NEEDS_REAUTH},
            severity="bad",
        ),
        Item(
            Attention.FAILING,
            "Failing, retrying",
            "Refreshes fail; the portal retries with backoff. The last error says why.",
            counts[Attention.FAILING],
            {"attention": Attention.FAILING},
        ),
        Item(
            Attention.REVOKE_PENDING,
            "Revocations still pending",
            "Disconnected, but the provider has not confirmed the revocation; retried "
            "automatically.",
            counts["revoke_pending"],
            {"attention": Attention.REVOKE_PENDING},
        ),
        Item(
            "lapsing_7",
            "Refresh tokens ending within 7 days",
            "Reconnect these before they end, or refresh them if the provider renews it.",
            counts["lapsing_7"],
            {"attention": Attention.LAPSING, "within": 7, "sort": "refresh_expires"},
            severity="bad",
        ),
        Item(
            "lapsing_30",
            "Refresh tokens ending in 8 to 30 days",
            "Plan a reconnect for these.",
            counts["lapsing_30"] - counts["lapsing_7"],
            {"attention": Attention.LAPSING, "within": 30, "sort": "refresh_expires"},
            link_text=f"Show all {counts['lapsing_30']:,} ending within 30 days",
        ),
        Item(
            Attention.COLD,
            "Access tokens not kept warm",
            "Their app keeps tokens warm, yet the access token has expired: check the workers "
            "and beat (see /healthz).",
            counts["cold"],
            {"attention": Attention.COLD},
        ),
    ]
    filters = {
        Attention.NEEDS_REAUTH: attention_q(Attention.NEEDS_REAUTH, tenant=tenant, now=now),
        Attention.FAILING: attention_q(Attention.FAILING, tenant=tenant, now=now),
        Attention.REVOKE_PENDING: attention_q(Attention.REVOKE_PENDING, tenant=tenant, now=now),
        "lapsing_7": lapsing_q(now, 7),
        "lapsing_30": lapsing_q(now, 30) & ~lapsing_q(now, 7),
        Attention.COLD: attention_q(Attention.COLD, tenant=tenant, now=now),
    }
    shown = [item for item in items if item.count > 0]
    # Each heading's five ids on its own index, without joins; then all their rows in one read.
    chosen = {
        item.key: list(
            qs.filter(filters[item.key])
            .order_by(*EXAMPLE_ORDER[item.key])
            .values_list("pk", flat=True)[:EXAMPLES]
        )
        for item in shown
    }
    found = {c.pk: c for c in page_rows([pk for ids in chosen.values() for pk in ids])}
    for item in shown:
        item.examples = [found[pk] for pk in chosen[item.key] if pk in found]
        if item.key == Attention.FAILING:
            since = dict(
                _failing_since(Connection.objects.filter(pk__in=chosen[item.key])).values_list(
                    "pk", "failing_since"
                )
            )
            for conn in item.examples:
                conn.failing_since = since.get(conn.pk)
    apps = PrivateApp.objects.filter(tenant=tenant, credentials_invalid_at__isnull=False)
    rejected = list(apps.order_by("credentials_invalid_at")[:EXAMPLES])
    if rejected:
        shown.insert(
            1,
            Item(
                "credentials",
                "Apps whose credentials the provider rejected",
                "Every client secret was refused (invalid_client): an admin adds the current "
                "secret on the app's page.",
                apps.count(),
                {},
                examples=rejected,
                severity="bad",
            ),
        )
    return shown


def expiries_per_day(qs: QuerySet[Connection], *, now: datetime) -> list[tuple[str, int]]:
    """Refresh tokens of refreshable connections ending on each of the next 90 days."""
    start = timezone.localtime(now).date()
    counts = dict(
        qs.filter(
            status__in=Connection.REFRESHABLE,
            refresh_expires_at__gte=now,
            refresh_expires_at__lt=now + timedelta(days=EXPIRY_DAYS),
        )
        .order_by()
        .annotate(day=TruncDate("refresh_expires_at"))
        .values_list("day")
        .annotate(n=Count("*"))
    )
    days = [start + timedelta(days=i) for i in range(EXPIRY_DAYS)]
    return [(day.isoformat(), counts.get(day, 0)) for day in days]


def activity_per_hour(*, tenant, now: datetime) -> list[tuple[str, int, int]]:
    """Refreshes and failures in each of the last 7 days' hours (from the roll-up)."""
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=ACTIVITY_HOURS - 1)
    stored = {
        row.hour: row
        for row in ActivityHour.objects.filter(tenant=tenant, hour__gte=start, hour__lte=end)
    }
    series = []
    for i in range(ACTIVITY_HOURS):
        hour = start + timedelta(hours=i)
        row = stored.get(hour)
        label = f"{timezone.localtime(hour):%Y-%m-%d %H}:00"
        series.append((label, row.refreshed if row else 0, row.failed if row else 0))
    return series
