"""An admin registers a Manu Online app in the browser, sees the secret once, and rotates it."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/t/acme/$"))


def secret_row(page: Page, last_four: str):
    return page.get_by_test_id("secret-row").filter(has_text=f"••••{last_four}")


def test_admin_registers_a_manu_online_app_and_rotates_its_secret(live_server, page, alice):
    base = live_server.url
    log_in(page, base, "alice")

    page.get_by_role("link", name="Apps", exact=True).click()
    page.get_by_role("link", name="Register an app").click()
    page.get_by_label("Manu Online").check()
    page.get_by_role("button", name="Continue").click()

    page.fill("#id_name", "Books")
    page.fill("#id_client_id", "manu-client-id")
    page.fill(
        "#id_redirect_uris",
        "https://portal.example/oauth/callback/\nhttps://backup.example/oauth/callback/",
    )
    page.fill("#id_account_ids", "1001\n1002\n1003")
    # Seed 000: the user's API rights, comma separated; API_ALL is only a suggestion.
    page.fill("#id_scopes", "API_ALL,PARTNER_READ")
    page.fill("#id_client_secret", "first-secret-value-AAAA")
    page.get_by_role("button", name="Register").click()

    expect(page.get_by_role("heading", name=re.compile("Books"))).to_be_visible()
    expect(page.get_by_test_id("secret-once")).to_have_text("first-secret-value-AAAA")
    expect(page.get_by_text("Pending").first).to_be_visible()
    expect(page.get_by_text("1001, 1002, 1003")).to_be_visible()
    expect(page.get_by_text("API_ALL,PARTNER_READ")).to_be_visible()

    page.reload()
    expect(page.get_by_test_id("secret-once")).to_have_count(0)
    expect(page.get_by_text("first-secret-value-AAAA")).to_have_count(0)
    expect(secret_row(page, "AAAA")).to_contain_text("primary")

    # Rotation: add the new secret, make it primary, revoke the old one.
    page.get_by_role("link", name="Add a secret").click()
    page.fill("#id_value", "second-secret-value-BBBB")
    page.fill("#id_label", "rotation")
    page.get_by_role("button", name="Add secret").click()
    expect(page.get_by_test_id("secret-once")).to_have_text("second-secret-value-BBBB")

    # Each of these asks first; the question names the secret.
    questions = []

    def answer(dialog):
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    secret_row(page, "BBBB").get_by_role("button", name="Make primary").click()
    expect(secret_row(page, "BBBB")).to_contain_text("primary")
    secret_row(page, "AAAA").get_by_role("button", name="Revoke").click()
    expect(secret_row(page, "AAAA")).to_contain_text("revoked")
    expect(secret_row(page, "BBBB")).to_contain_text("primary")
    expect(page.get_by_text("second-secret-value-BBBB")).to_have_count(0)
    assert [q.split("?")[0] for q in questions] == ["Make ••••BBBB primary", "Revoke ••••AAAA"]

    # Disabling asks too, and saying no changes nothing.
    page.remove_listener("dialog", answer)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_text("Books is now enabled")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("button", name="Disable")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_test_id("app-disabled")).to_be_visible()


def test_the_generic_form_shows_the_fields_of_the_chosen_grant(live_server, page, alice):
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/t/acme/apps/new/?provider=generic")
    username, redirects = page.locator("#id_service_username"), page.locator("#id_redirect_uris")
    page.select_option("#id_grant_type", "client_credentials")
    expect(username).to_be_hidden()
    expect(redirects).to_be_hidden()
    page.select_option("#id_grant_type", "password")
    expect(username).to_be_visible()
    expect(redirects).to_be_hidden()
    page.select_option("#id_grant_type", "authorization_code")
    expect(username).to_be_hidden()
    expect(redirects).to_be_visible()
