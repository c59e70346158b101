"""The token expiry report: its numbers at each bucket boundary, its table's filters, sorting
and pages, the CSV and JSON, and who may see what."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import reports
from connections.models import Connection, PrivateApp
from tests import factories

Status = Connection.Status
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def url(slug="acme", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return reverse("expiry_report", args=[slug]) + (f"?{query}" if query else "")


@pytest.fixture
def manu_prod(acme):
    return factories.app(acme, "manu_online", name="Manu prod")


@pytest.fixture
def boundaries(manu_prod, alice):
    """One connection each side of every bucket edge, named for where it belongs."""
    c = {}
    make = lambda name, **kw: c.setdefault(  # noqa: E731
        name, factories.connection(manu_prod, user=alice, account_name=name, **kw)
    )
    make("in-7", refresh_in=7 * DAY - MINUTE)
    make("past-7", refresh_in=7 * DAY + MINUTE)
    make("in-30", refresh_in=30 * DAY - MINUTE)
    make("past-30", refresh_in=30 * DAY + MINUTE)
    make("lapsed", refresh_in=-MINUTE)  # already ended, still marked active: counts as lapsing
    make("reauth-soon", refresh_in=2 * DAY, status=Status.NEEDS_REAUTH, last_error="refused")
    make("revoked-soon", refresh_in=2 * DAY, status=Status.REVOKED)
    make("failing-soon", refresh_in=3 * DAY, status=Status.FAILING, failure_count=2)
    make("revoke-pending", status=Status.REVOKED, revoke_retry_at=timezone.now() + MINUTE)
    make("cold", access_in=-MINUTE)
    return c


def test_each_bucket_counts_exactly_the_connections_on_its_side_of_the_edge(boundaries, acme):
    counts = reports.summary(Connection.objects.filter(tenant=acme), tenant=acme, now=timezone.now())

    assert counts.total == 10
    assert counts.by_status == {
        "active": 6,
        "needs_reauth": 1,
        "failing": 1,
        "revoked": 2,
    }
    a = counts.attention
    # within 7 days: in-7, lapsed, failing-soon (needs_reauth and revoked never "lapse")
    assert a["lapsing_7"] == 3
    # within 30 days: those, past-7 and in-30
    assert a["lapsing_30"] == 5
    assert a["needs_reauth"] == 1 and a["failing"] == 1
    assert a["revoke_pending"] == 1
    assert a["cold"] == 1


def test_on_demand_and_disabled_apps_are_never_reported_as_not_kept_warm(acme):
    lazy = factories.app(acme, refresh_policy=PrivateApp.RefreshPolicy.ON_DEMAND)
    off = factories.app(acme, status=PrivateApp.Status.DISABLED)
    warm = factories.app(acme)
    for app in (lazy, off, warm):
        factories.connection(app, access_in=-MINUTE)
    counts = reports.summary(Connection.objects.filter(tenant=acme), tenant=acme, now=timezone.now())
    assert counts.attention["cold"] == 1


def test_the_report_page_puts_what_needs_attention_first_with_links(boundaries, login, olive):
    page = login(olive).get(url())
    assert page.status_code == 200
    html = page.content.decode()
    attention = html.index('data-testid="attention"')
    assert attention < html.index("By status") < html.index('id="table"')
    for key in ("needs_reauth", "failing", "revoke_pending", "lapsing_7", "lapsing_30", "cold"):
        assert f'data-testid="attention-{key}"' in html, key
    # each example links to its connection, where it is fixed
    reauth = boundaries["reauth-soon"]
    assert reverse("connection_detail", args=["acme", reauth.pk]) in html
    assert "Show all 3 →" in html  # the 7-day bucket
    # a needs-re-authorisation row does not advertise a refresh-token expiry
    assert "not used: needs re-authorisation" in html


def test_a_tenant_with_nothing_wrong_says_so(manu_prod, login, alice):
    factories.connection(manu_prod)
    html = login(alice).get(url()).content.decode()
    assert 'data-testid="all-clear"' in html


def test_rejected_app_credentials_link_to_the_app(acme, manu_prod, login, alice):
    PrivateApp.objects.filter(pk=manu_prod.pk).update(credentials_invalid_at=timezone.now())
    html = login(alice).get(url()).content.decode()
    assert 'data-testid="attention-credentials"' in html
    assert reverse("app_detail", args=["acme", manu_prod.pk]) in html


def test_failing_connections_show_the_last_error_and_since_when(manu_prod, login, alice):
    from connections.models import AuditEvent

    now = timezone.now()
    conn = factories.connection(
        manu_prod,
        status=Status.FAILING,
        failure_count=3,
        last_error="server: the provider answered 503",
        last_refreshed_at=now - timedelta(hours=5),
    )
    first = factories.event(conn, AuditEvent.Kind.REFRESH_FAILED, at=now - timedelta(hours=4))
    factories.event(conn, AuditEvent.Kind.REFRESH_FAILED, at=now - timedelta(hours=1))
    html = login(alice).get(url()).content.decode()
    block = html[html.index('data-testid="attention-failing"') :]
    assert "the provider answered 503" in block
    assert f'datetime="{first.created_at.isoformat()}"' in block


def test_charts_count_expiries_per_day_and_activity_per_hour(manu_prod, acme, login, alice):
    from connections import activity
    from connections.models import AuditEvent

    now = timezone.now()
    for _ in range(3):
        factories.connection(manu_prod, refresh_in=2 * DAY)
    conn = factories.connection(manu_prod, refresh_in=200 * DAY)  # outside the 90 days
    factories.event(conn, AuditEvent.Kind.REFRESHED, at=now - timedelta(hours=2))
    factories.event(conn, AuditEvent.Kind.REFRESHED, at=now - timedelta(hours=2))
    factories.event(conn, AuditEvent.Kind.REFRESH_FAILED, at=now - timedelta(hours=2))
    activity.roll_up(now=now)

    per_day = dict(reports.expiries_per_day(Connection.objects.filter(tenant=acme), now=now))
    assert sum(per_day.values()) == 3 and len(per_day) == 90
    per_hour = reports.activity_per_hour(tenant=acme, now=now)
    assert len(per_hour) == 7 * 24
    assert sum(ok for _, ok, _ in per_hour) == 2 and sum(bad for _, _, bad in per_hour) == 1

    html = login(alice).get(url()).content.decode()
    assert html.count("<svg") == 2 and "<script" not in html.split("<svg")[1]
    assert ": 3 refresh tokens end" in html  # a bar's exact figure, in its <title>
    assert ": 2 refreshes, 1 failures" in html


def test_the_roll_up_is_idempotent(manu_prod, acme):
    from connections import activity
    from connections.models import ActivityHour, AuditEvent

    now = timezone.now()
    conn = factories.connection(manu_prod)
    factories.event(conn, AuditEvent.Kind.REFRESHED, at=now)
    activity.roll_up(now=now)
    activity.roll_up(now=now)
    assert ActivityHour.objects.get(tenant=acme).refreshed == 1


# --- the table: filters, sorting, pages ---------------------------------------------------


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["connections"]]


def test_filters_narrow_the_table(acme, manu_prod, login, alice, bob):
    manus = factories.app(acme, "manus", name="Manus prod")
    mine = factories.connection(manu_prod, user=bob, account_name="Bob's Oy")
    other = factories.connection(manus, user=alice, account_name="Alice Ltd")
    broken = factories.connection(manu_prod, user=alice, status=Status.NEEDS_REAUTH)
    soon = factories.connection(manus, user=alice, refresh_in=3 * DAY)
    client = login(alice)

    def get(**params):
        return ids(client.get(url(format="json", **params)))

    assert sorted(get()) == sorted([mine.pk, other.pk, broken.pk, soon.pk])
    assert sorted(get(provider="manus")) == sorted([other.pk, soon.pk])
    assert sorted(get(app=manu_prod.pk)) == sorted([mine.pk, broken.pk])
    assert get(status="needs_reauth") == [broken.pk]
    assert get(owner=bob.pk) == [mine.pk]
    assert get(within=7) == [soon.pk]
    assert get(q="bob") == [mine.pk]
    assert other.pk in get(q=str(other.pk))  # digits also match the id
    assert get(attention="needs_reauth") == [broken.pk]


def test_sorting_by_an_expiry_column_treats_an_empty_time_as_never(manu_prod, login, alice):
    late = factories.connection(manu_prod, refresh_in=300 * DAY)
    early = factories.connection(manu_prod, refresh_in=10 * DAY)
    none = factories.connection(manu_prod, refresh_in=None)
    client = login(alice)
    assert ids(client.get(url(format="json", sort="refresh_expires"))) == [
        early.pk,
        late.pk,
        none.pk,
    ]
    assert ids(client.get(url(format="json", sort="-refresh_expires"))) == [
        none.pk,
        late.pk,
        early.pk,
    ]


def test_pages_cover_every_row_once(manu_prod, login, alice):
    made = {factories.connection(manu_prod).pk for _ in range(60)}
    client = login(alice)
    seen = []
    for page in (1, 2, 3):
        body = client.get(url(format="json", per_page=25, page=page, sort="id")).json()
        assert body["count"] == 60 and body["pages"] == 3
        seen += [row["id"] for row in body["connections"]]
    assert seen == sorted(made)
    assert body["next"] is None
    html = client.get(reverse("connection_list", args=["acme"]) + "?per_page=25&page=2")
    assert "26–50 of 60" in html.content.decode()


@pytest.mark.parametrize(
    "query",
    ["within=abc", "within=0", "status=bogus", "sort=password", "app=99999", "per_page=7"],
)
def test_bad_filters_are_a_400_with_the_fields_in_json_and_a_form_error_on_the_page(
    query, manu_prod, login, alice
):
    factories.connection(manu_prod)
    client = login(alice)
    name = query.split("=")[0]
    bad = client.get(url() + f"?format=json&{query}")
    assert bad.status_code == 400 and name in bad.json()["fields"]
    assert client.get(url() + f"?format=csv&{query}").status_code == 400
    page = client.get(url() + f"?{query}")
    assert page.status_code == 200 and 'data-testid="filter-errors"' in page.content.decode()
    listing = client.get(reverse("connection_list", args=["acme"]) + f"?{query}")
    assert listing.status_code == 200


def test_an_unknown_format_or_page_never_fails(manu_prod, login, alice):
    factories.connection(manu_prod)
    client = login(alice)
    assert client.get(url(format="xml")).status_code == 400
    assert client.get(url(page="abc")).status_code == 200
    assert client.get(url(page="999999")).status_code == 200


# --- CSV and JSON ----------------------------------------------------------------------------


def test_the_csv_streams_the_filtered_rows_and_defuses_formulas(manu_prod, login, alice):
    factories.connection(manu_prod, account_name="=HYPERLINK(\"http://evil\")", refresh_in=2 * DAY)
    factories.connection(manu_prod, account_name="Calm Oy", refresh_in=2 * DAY)
    factories.connection(manu_prod, account_name="Far Oy", refresh_in=200 * DAY)
    response = login(alice).get(url(format="csv", within=7))
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    names = sorted(r["account_name"] for r in rows)
    assert names == ["'=HYPERLINK(\"http://evil\")", "Calm Oy"]
    assert rows[0]["provider"] == "manu_online" and rows[0]["status"] == "active"
    assert "access_token" not in rows[0] and "refresh_token" not in rows[0]


def test_the_json_has_the_summary_and_no_token(boundaries, login, olive):
    body = login(olive).get(url(format="json")).json()
    assert body["summary"]["total"] == 10
    assert body["summary"]["needs_attention"]["lapsing_7"] == 3
    assert body["summary"]["by_provider"] == {"manu_online": 10}
    text = json.dumps(body)
    assert "access_token" not in text and "refresh_token\"" not in text
    reauth = next(r for r in body["connections"] if r["account_name"] == "reauth-soon")
    assert reauth["refresh_expires_at"] is None  # never reached: not advertised


# --- who sees what -------------------------------------------------------------------------


def test_members_see_only_their_own_connections(manu_prod, login, alice, bob):
    factories.connection(manu_prod, user=alice, status=Status.NEEDS_REAUTH)
    own = factories.connection(manu_prod, user=bob)
    client = login(bob)
    assert ids(client.get(url(format="json"))) == [own.pk]
    assert client.get(url(format="json")).json()["summary"]["total"] == 1
    rows = b"".join(client.get(url(format="csv")).streaming_content).decode().splitlines()
    assert len(rows) == 2
    # owner filter is not theirs to use
    assert "owner" not in client.get(url(format="json", owner=bob.pk)).json().get("fields", {})


def test_another_tenants_report_is_a_404_and_anonymous_is_sent_to_log_in(
    manu_prod, client, login, carol
):
    factories.connection(manu_prod)
    assert client.get(url()).status_code == 302
    other = login(carol)
    for fmt in ("html", "csv", "json"):
        assert other.get(url(format=fmt)).status_code == 404
    assert other.get(reverse("connection_list", args=["acme"])).status_code == 404


def test_inputs_found_in_review_answer_cleanly(acme, bob, login):
    """An empty JSON page, a superscript "digit", and a member's report without tenant-wide
    activity (each was a 500 or a leak before)."""
    client = login(bob)
    body = client.get(url(format="json")).json()
    assert body["count"] == 0 and body["connections"] == []
    assert client.get(url(q="²")).status_code == 200
    assert client.get(reverse("connection_list", args=["acme"]) + "?q=%C2%B2").status_code == 200
    assert 'data-testid="activity-chart"' not in client.get(url()).content.decode()
