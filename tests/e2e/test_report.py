"""An ops person opens the expiry report, filters it, follows a "needs attention" item to the
connection that needs fixing, and downloads the CSV, in Chromium under the CSP."""

import csv
import io
import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from connections.models import Connection
from tests import factories
from tests.support.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ops_finds_what_needs_attention_and_downloads_the_csv(live_server, page: Page, acme, olive):
    app = factories.app(acme, name="Manu prod")
    broken = factories.connection(
        app,
        status=Connection.Status.NEEDS_REAUTH,
        account_name="Broken Oy",
        last_error="the provider rejected the refresh token (invalid_grant)",
    )
    factories.connection(app, account_name="Soon Oy", refresh_in=timedelta(days=3))
    for n in range(5):
        factories.connection(app, account_name=f"Fine {n} Oy")
    violations: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))

    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", "olive")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name="Report", exact=True).click()
    expect(page.get_by_role("heading", name="Token expiry report")).to_be_visible()

    attention = page.get_by_test_id("attention")
    expect(attention.get_by_test_id("attention-needs_reauth")).to_contain_text("1")
    expect(attention.get_by_test_id("attention-lapsing_7")).to_contain_text("Soon Oy")
    # the exact time is shown beside the words, in the browser's zone (portal.js)
    exact = attention.get_by_test_id("attention-lapsing_7").locator("[data-exact]").first
    expect(exact).to_have_text(re.compile(r"\d{4}|\d:\d\d"))

    # filter the table to what needs re-authorisation
    page.get_by_label("Status").select_option("needs_reauth")
    page.get_by_test_id("filters").get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=needs_reauth"))
    expect(page.get_by_test_id("connection-row")).to_have_count(1)
    expect(page.get_by_test_id("row-count")).to_have_text("1–1 of 1")

    # the CSV of the filtered table
    with page.expect_download() as download:
        page.get_by_test_id("csv-link").click()
    text = open(download.value.path(), encoding="utf-8").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["account_name"] for r in rows] == ["Broken Oy"]

    # follow the item to the connection, where Reconnect fixes it
    attention.get_by_test_id("attention-needs_reauth").get_by_test_id("attention-link").click()
    expect(page).to_have_url(re.compile(rf"/connections/{broken.pk}/$"))
    expect(page.get_by_test_id("status")).to_have_text("Needs re-authorisation")
    expect(page.get_by_test_id("last-error")).to_contain_text("invalid_grant")
    assert violations == []
