"""Filtering, sorting and paging connections in the database.

The Connections list, the expiry report's table, its CSV and JSON, and `manage.py
expiry_report` all read through here, so a filter means the same thing everywhere. Every
filter and sort is a WHERE or ORDER BY on an indexed column of the tenant's rows (models.py),
and only one page of rows is ever loaded: it stays fast at 100,000 connections a tenant.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from connections.models import Connection, PrivateApp
from connections.providers import PROVIDER_CHOICES, Grant

Status = Connection.Status

#: sort key in the URL → column; "-key" sorts descending
SORTS = {
    "id": "id",
    "refresh_expires": "refresh_expires_at",
    "access_expires": "access_expires_at",
    "next_refresh": "next_refresh_at",
    "last_refreshed": "last_refreshed_at",
    "created": "created_at",
}
#: the form fields that narrow the rows (the others sort and page)
FILTERS = ("q", "provider", "app", "status", "owner", "attention", "within")
PER_PAGE_CHOICES = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
MAX_WITHIN_DAYS = 3650


class Attention:
    """What needs a person: each a filter of the table and a heading of the report."""

    NEEDS_REAUTH = "needs_reauth"
    FAILING = "failing"
    REVOKE_PENDING = "revoke_pending"
    COLD = "cold"
    LAPSING = "lapsing"

    CHOICES = (
        (NEEDS_REAUTH, "Needs re-authorisation"),
        (FAILING, "Failing"),
        (REVOKE_PENDING, "Revocation pending"),
        (COLD, "Access token not kept warm"),
        (LAPSING, "Refresh token lapsing"),
    )


def lapsing_q(now: datetime, days: int) -> Q:
    """A refreshable connection whose refresh token ends within `days` (or already has)."""
    return Q(status__in=Connection.REFRESHABLE, refresh_expires_at__lte=now + timedelta(days=days))


def attention_q(kind: str, *, tenant, now: datetime, within_days: int = 30) -> Q:
    if kind == Attention.NEEDS_REAUTH:
        return Q(status=Status.NEEDS_REAUTH)
    if kind == Attention.FAILING:
        return Q(status=Status.FAILING)
    if kind == Attention.REVOKE_PENDING:
        return Q(revoke_retry_at__isnull=False)
    if kind == Attention.COLD:
        # Should be warm (an app that keeps tokens warm, or a service grant, whose
        # connections are all service accounts), is refreshable and enabled, yet its access
        # token has expired: services asking now wait for a refresh. The tenant's few such
        # apps are listed first, so the database reads only their expired tokens on the
        # (app, access_expires_at) index.
        apps = PrivateApp.objects.filter(tenant=tenant).exclude(status=PrivateApp.Status.DISABLED)
        warm = apps.filter(
            Q(refresh_policy=PrivateApp.RefreshPolicy.WARM)
            | ~Q(grant_type=Grant.AUTHORIZATION_CODE)
        )
        return Q(
            app_id__in=list(warm.values_list("pk", flat=True)),
            status__in=Connection.REFRESHABLE,
            access_expires_at__lt=now,
        )
    if kind == Attention.LAPSING:
        return lapsing_q(now, within_days)
    raise ValueError(kind)


class ConnectionFilterForm(forms.Form):
    """The table's filters, from the query string. Invalid values are form errors, shown on the
    page (or a 400 for CSV and JSON), never a 500."""

    q = forms.CharField(required=False, max_length=120, label="Account")
    provider = forms.ChoiceField(required=False, choices=[("", "Any provider"), *PROVIDER_CHOICES])
    app = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="App")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Connection.SHOWN_STATUSES]
    )
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    attention = forms.ChoiceField(
        required=False, choices=[("", "Anything"), *Attention.CHOICES], label="Needs"
    )
    within = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WITHIN_DAYS,
        label="Refresh token ends within (days)",
    )
    sort = forms.ChoiceField(required=False)
    per_page = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", f"{DEFAULT_PER_PAGE} rows")]
        + [(n, f"{n} rows") for n in PER_PAGE_CHOICES if n != DEFAULT_PER_PAGE],
        label="Rows",
    )

    def __init__(self, data, *, tenant, membership, default_sort: str = "-id"):
        super().__init__(data)
        self.default_sort = default_sort
        self.fields["sort"].choices = [
            (f"{sign}{key}", f"{sign}{key}") for key in SORTS for sign in ("", "-")
        ]
        apps = PrivateApp.objects.filter(tenant=tenant).order_by("name").values_list("pk", "name")
        self.fields["app"].choices = [("", "Any app"), *apps]
        if not membership.sees_all_connections:
            del self.fields["owner"]  # members only ever see their own
        else:
            people = tenant.memberships.select_related("user").order_by("user__username")
            self.fields["owner"].choices = [
                ("", "Anyone"),
                *((m.user_id, m.user.get_username()) for m in people),
            ]

    @property
    def filters(self) -> dict:
        """The cleaned filters (empty when the form is invalid: the page then shows the error
        beside an unfiltered table rather than nothing)."""
        return self.cleaned_data if self.is_valid() else {}

    @property
    def sort_key(self) -> str:
        return self.filters.get("sort") or self.default_sort


def filter_connections(
    qs: QuerySet[Connection], filters: dict, *, tenant, now: datetime
) -> QuerySet:
    if q := (filters.get("q") or "").strip():
        match = Q(account_name__icontains=q) | Q(account_id__icontains=q)
        if q.isascii() and q.isdecimal() and len(q) < 19:  # "²" is a digit, not a number
            match |= Q(pk=int(q))
        qs = qs.filter(match)
    if filters.get("provider"):
        qs = qs.filter(app__provider=filters["provider"])
    if filters.get("app"):
        qs = qs.filter(app_id=filters["app"])
    if filters.get("status") == Connection.PAUSED:
        qs = qs.paused()
    elif filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("owner"):
        qs = qs.filter(user_id=filters["owner"])
    within = filters.get("within")
    if filters.get("attention"):
        qs = qs.filter(
            attention_q(filters["attention"], tenant=tenant, now=now, within_days=within or 30)
        )
    elif within:
        qs = qs.filter(lapsing_q(now, within))
    return qs


def sort_connections(qs: QuerySet[Connection], sort_key: str) -> QuerySet:
    """An empty time means "never", so it sorts after every time: last ascending, first
    descending. That is also the order of the (tenant, column, id) index read forwards or
    backwards, so any page of any sort is an index scan. The id breaks ties: pages never
    overlap."""
    descending = sort_key.startswith("-")
    column = SORTS.get(sort_key.lstrip("-"), "id")
    if column == "id":
        return qs.order_by("-id" if descending else "id")
    expr = F(column).desc(nulls_first=True) if descending else F(column).asc(nulls_last=True)
    return qs.order_by(expr, "-id" if descending else "id")


#: what a row of the table shows; tokens are never loaded (nor decrypted) for a list
ROW_FIELDS = (
    "id",
    "tenant_id",
    "status",
    "kind",
    "account_id",
    "account_name",
    "access_expires_at",
    "refresh_expires_at",
    "next_refresh_at",
    "last_refreshed_at",
    "revoke_retry_at",
    "failure_count",
    "last_error",
    "created_at",
    "app__id",
    "app__name",
    "app__provider",
    "app__status",
    "app__refresh_policy",
    "user__id",
    "user__username",
)


def rows(qs: QuerySet[Connection]) -> QuerySet[Connection]:
    return qs.select_related("app", "user").only(*ROW_FIELDS)


@dataclass
class Table:
    """One page of a filtered, sorted connections table, with the links a page needs."""

    form: ConnectionFilterForm
    page: Page
    sort: str
    base_query: dict
    #: every row that matches, sorted (the CSV and JSON read it)
    filtered: QuerySet
    #: some filter narrows the rows (sorting and paging do not)
    filtering: bool

    def link(self, **changes) -> str:
        params = {**self.base_query, **changes}
        return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})

    def sort_link(self, key: str) -> str:
        """Ascending first; clicking the sorted column again flips it."""
        return self.link(sort=f"-{key}" if self.sort == key else key, page=None)

    @property
    def sort_links(self) -> dict:
        return {key: self.sort_link(key) for key in SORTS}

    @property
    def sorted_by(self) -> tuple[str, bool]:
        return self.sort.lstrip("-"), self.sort.startswith("-")

    @property
    def previous_link(self) -> str:
        return self.link(page=self.page.previous_page_number())

    @property
    def next_link(self) -> str:
        return self.link(page=self.page.next_page_number())

    @property
    def csv_link(self) -> str:
        return self.link(format="csv")

    @property
    def json_link(self) -> str:
        return self.link(format="json")

    @property
    def page_links(self) -> list[tuple[str, str | None]]:
        """First, previous, the pages around this one, next, last: (label, link or None)."""
        page, last = self.page.number, self.page.paginator.num_pages
        numbers = sorted({1, last, *range(max(1, page - 2), min(last, page + 2) + 1)})
        links: list[tuple[str, str | None]] = []
        previous = None
        for n in numbers:
            if previous is not None and n > previous + 1:
                links.append(("…", None))
            links.append((str(n), None if n == page else self.link(page=n)))
            previous = n
        return links


def connection_table(
    qs: QuerySet[Connection],
    data,
    *,
    tenant,
    membership,
    default_sort: str = "-id",
    now: datetime | None = None,
    known_total: int | None = None,
) -> Table:
    form = ConnectionFilterForm(
        data, tenant=tenant, membership=membership, default_sort=default_sort
    )
    now = now or timezone.now()
    filtered = sort_connections(
        filter_connections(qs, form.filters, tenant=tenant, now=now), form.sort_key
    )
    per_page = form.filters.get("per_page") or DEFAULT_PER_PAGE
    paginator = Paginator(filtered.values_list("pk", flat=True), per_page)
    filtering = any(form.filters.get(f) not in (None, "") for f in FILTERS)
    if known_total is not None and not filtering:
        paginator.count = known_total  # unfiltered: the caller counted these rows already
    page = paginator.get_page(data.get("page"))
    page.object_list = page_rows(list(page.object_list))
    base = {k: v for k, v in form.filters.items() if v not in (None, "")}
    base["sort"] = form.sort_key
    return Table(
        form=form,
        page=page,
        sort=form.sort_key,
        base_query=base,
        filtered=filtered,
        filtering=filtering,
    )


def page_rows(ids: list[int]) -> list[Connection]:
    """A page's rows, in the page's order. The page itself is found on ids alone (an
    index-only scan, however deep the OFFSET); only its rows are read from the table."""
    found = {c.pk: c for c in rows(Connection.objects.filter(pk__in=ids))}
    return [found[pk] for pk in ids if pk in found]
