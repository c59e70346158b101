"""A member connects the Manu Online demo app in the browser and tests the connection."""

import re

import pytest
from playwright.sync_api import Page, expect

from sandbox.demo import DEMO_PASSWORD, DEMO_USERNAME, create_demo_apps
from tests.support.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_connects_manu_online_and_tests_it(
    live_server, settings, page: Page, acme, alice, bob
):
    settings.PORTAL_BASE_URL = live_server.url
    create_demo_apps(tenant=acme, user=alice)
    base = live_server.url

    # The portal's and the sandbox's pages run under the CSP without breaking it once.
    csp_violations = []
    page.on(
        "console", lambda m: "Content Security Policy" in m.text and csp_violations.append(m.text)
    )
    response = page.goto(f"{base}/login/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    page.fill("#id_username", "bob")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/t/acme/$"))

    page.get_by_role("link", name="Apps").first.click()
    page.get_by_role("link", name="Manu Online (sandbox)").click()
    page.get_by_test_id("connect").click()

    # At the provider: sign in, pick one of the two demo accounts, grant.
    page.fill("#username", DEMO_USERNAME)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#login")
    page.get_by_label("Demo Trading AB").check()
    page.click("#choose-account")
    page.click("#grant")

    expect(page).to_have_url(re.compile(r"/t/acme/connections/\d+/$"))
    expect(page.get_by_text("is connected as Demo Trading AB")).to_be_visible()
    expect(page.get_by_test_id("account")).to_contain_text("Demo Trading AB")
    expect(page.get_by_test_id("status")).to_have_text("Active")

    page.get_by_test_id("test").click()
    result = page.get_by_test_id("test-result")
    expect(result).to_contain_text("HTTP 200")
    expect(result).to_contain_text('"username": "demo"')
    expect(result).to_contain_text('"account_id": "1002"')
    assert csp_violations == []
