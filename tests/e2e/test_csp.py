"""The pages under the Content-Security-Policy in a real browser: portal.js does what the
inline handlers did, the tenant switcher works without JavaScript, and Connect may still
redirect to a provider on another origin (browsers check form-action on redirects)."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from portal.models import Membership
from sandbox.demo import create_demo_apps
from tests.support.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Page, base: str, username: str) -> None:
    """Sign in and open Acme's dashboard (with several tenants, home is the picker)."""
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.goto(f"{base}/t/acme/")


def watch_csp(page: Page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    return violations


def test_the_tenant_switcher_and_confirmations_work_under_the_csp(live_server, page, bob, globex):
    Membership.objects.create(user=bob, tenant=globex, role=Membership.Role.ADMIN)
    violations = watch_csp(page)
    base = live_server.url
    log_in(page, base, "bob")

    switcher = page.locator("form.switcher")
    expect(switcher.get_by_role("button", name="Switch")).to_be_hidden()  # portal.js submits
    page.select_option("#tenant-switch", "globex")
    expect(page).to_have_url(re.compile(r"/t/globex/$"))
    expect(page.locator("#tenant-switch")).to_have_value("globex")

    page.get_by_role("link", name="API keys").click()
    page.fill("#id_name", "billing")
    page.get_by_role("button", name="Create key").click()
    revoke = page.get_by_role("button", name="Revoke")

    page.once("dialog", lambda dialog: dialog.dismiss())
    revoke.click()
    expect(page.get_by_text("Active", exact=True)).to_be_visible()  # dismissed: nothing sent

    page.once("dialog", lambda dialog: dialog.accept())
    revoke.click()
    expect(page.get_by_text(re.compile(r"^Revoked "))).to_be_visible()
    assert violations == []


def test_the_tenant_switcher_works_without_javascript(live_server, browser: Browser, bob, globex):
    Membership.objects.create(user=bob, tenant=globex, role=Membership.Role.MEMBER)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "bob")
        page.select_option("#tenant-switch", "globex")
        expect(page).to_have_url(re.compile(r"/t/acme/$"))  # nothing happens on change
        page.locator("form.switcher").get_by_role("button", name="Switch").click()
        expect(page).to_have_url(re.compile(r"/t/globex/$"))
    finally:
        context.close()


def test_connect_may_redirect_to_a_provider_on_another_origin(
    live_server, settings, page, acme, alice, bob
):
    # The browser is at http://localhost:<port>; the provider (the sandbox) is addressed as
    # http://127.0.0.1:<port>: another origin, as a real provider is.
    assert "//localhost:" in live_server.url
    provider_base = live_server.url.replace("//localhost:", "//127.0.0.1:")
    settings.PORTAL_BASE_URL = provider_base
    create_demo_apps(tenant=acme, user=alice)
    violations = watch_csp(page)
    log_in(page, live_server.url, "bob")

    page.get_by_role("link", name="Apps").first.click()
    page.get_by_role("link", name="Manu Online (sandbox)").click()
    page.get_by_test_id("connect").click()

    # The provider's sign-in page, reached through the portal's redirect.
    expect(page.locator("#username")).to_be_visible()
    assert page.url.startswith(provider_base + "/sandbox/")
    assert violations == []
