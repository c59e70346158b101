"""A first-time admin, on a laptop and on a phone: registers an app against the sandbox,
connects it, rotates its secret and disables it, with no dead end and no misleading state."""

import re

import pytest
from playwright.sync_api import Page, expect

from sandbox import registry, urls_for
from tests.support.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SANDBOX_USER, SANDBOX_PASSWORD = "sam", "sandbox-pass"
LAPTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


def no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"


def go(page: Page, link: str) -> None:
    """Follow a link of the main navigation, opening the phone's menu first where it is folded."""
    menu = page.get_by_role("button", name="Menu")
    if menu.is_visible() and menu.get_attribute("aria-expanded") == "false":
        menu.click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True).click()
    no_sideways_scroll(page)


def fill_endpoints(page: Page, provider: str, base: str) -> None:
    # The sandbox stands in for the provider: its endpoints go where a custom domain would.
    for name, url in urls_for(provider, base).items():
        field = page.locator(f"#id_{name}")
        if url and field.count():
            field.fill(url)


@pytest.mark.parametrize(
    ("viewport", "provider", "scopes"),
    [(LAPTOP, "manus", None), (PHONE, "manu_online", "API_ALL")],
    ids=["laptop-manus", "phone-manu_online"],
)
def test_register_connect_rotate_disable(
    live_server, settings, page: Page, alice, viewport, provider, scopes
):
    settings.PORTAL_BASE_URL = base = live_server.url
    page.set_viewport_size(viewport)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{base}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/t/acme/$"))
    no_sideways_scroll(page)

    # Register: the provider first, then only its fields.
    go(page, "Apps")
    page.get_by_role("link", name="Register an app").click()
    page.locator(f"input[name=provider][value={provider}]").check()
    page.get_by_role("button", name="Continue").click()
    no_sideways_scroll(page)
    page.get_by_role("button", name="Register").click()  # empty: every error is listed on top
    expect(page.get_by_test_id("error-summary")).to_be_visible()
    no_sideways_scroll(page)
    page.fill("#id_name", "Journey app")
    page.fill("#id_client_id", f"journey-{provider}")
    if scopes:
        page.fill("#id_scopes", scopes)
        page.fill("#id_account_ids", "1001")
    page.fill("#id_client_secret", "first-secret-value-AAAA")
    fill_endpoints(page, provider, base)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_test_id("secret-once")).to_have_text("first-secret-value-AAAA")
    expect(page.locator("#secret-once").get_by_role("button", name="Copy")).to_be_visible()
    no_sideways_scroll(page)
    if page.get_by_role("button", name="Enable").count():  # Manu Online starts pending
        page.get_by_role("button", name="Enable").click()

    # The same client at the provider (the sandbox), with the portal's callback.
    registry.register_client(
        provider=provider,
        client_id=f"journey-{provider}",
        secrets=["first-secret-value-AAAA", "second-secret-value-BBBB"],
        redirect_uris=[f"{base}/oauth/callback/"],
        account_ids=["1001", "1002"] if scopes else [],
        scopes=[scopes] if scopes else ["create_task"],
    )
    registry.create_user(
        provider=provider,
        username=SANDBOX_USER,
        password=SANDBOX_PASSWORD,
        accounts=[{"id": "1001", "name": "Acme Oy"}, {"id": "1002", "name": "Acme AB"}]
        if scopes
        else (),
    )

    # Connect, at the provider's own pages.
    page.get_by_test_id("connect").click()
    page.fill("#username", SANDBOX_USER)
    page.fill("#password", SANDBOX_PASSWORD)
    page.click("#login")
    if scopes:
        page.get_by_label("Acme Oy").check()
        page.click("#choose-account")
    page.click("#grant")
    expect(page).to_have_url(re.compile(r"/t/acme/connections/\d+/$"))
    expect(page.get_by_test_id("status")).to_have_text("Active")
    no_sideways_scroll(page)
    connection_url = page.url

    # Rotate: add the new secret, make it primary, revoke the old one (each asks first).
    page.get_by_role("link", name="Journey app").first.click()
    page.get_by_test_id("secret-add").click()
    page.fill("#id_value", "second-secret-value-BBBB")
    page.get_by_role("button", name=re.compile("Add secret|Replace secret")).click()
    rows = page.get_by_test_id("secret-row")
    rows.filter(has_text="••••BBBB").get_by_role("button", name="Make primary").click()
    expect(rows.filter(has_text="••••BBBB")).to_contain_text("primary")
    rows.filter(has_text="••••AAAA").get_by_role("button", name="Revoke").click()
    expect(rows.filter(has_text="••••AAAA")).to_contain_text("revoked")
    no_sideways_scroll(page)

    # The connection still refreshes, with the new secret.
    page.goto(connection_url)
    page.get_by_test_id("refresh").click()
    expect(page.get_by_text("Refreshed: a new access token is stored.")).to_be_visible()

    # Disable: the connection shows as paused, with the reason, and offers no Test.
    page.get_by_role("link", name="Journey app").first.click()
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_text("connection is paused")).to_be_visible()
    page.goto(connection_url)
    expect(page.get_by_test_id("status")).to_contain_text("Paused")
    expect(page.get_by_test_id("paused-reason")).to_contain_text("is disabled")
    expect(page.get_by_test_id("test")).to_have_count(0)
    go(page, "Connections")
    expect(page.get_by_test_id("paused")).to_be_visible()
