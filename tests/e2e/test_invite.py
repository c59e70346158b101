"""An admin invites an ops person, who accepts, sets a password, enrols TOTP and reaches the
connections list, in Chromium under the CSP."""

import base64
import re

import pytest
from django.core import mail
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from tests.support.people import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_invited_ops_person_joins_enrols_totp_and_reads_connections(
    live_server, page: Page, alice, tasks_inline, settings
):
    settings.PORTAL_BASE_URL = live_server.url
    violations: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name="Members").click()
    page.get_by_label("E-mail address").fill("oscar@acme.test")
    page.get_by_test_id("invite-form").get_by_label("Role").select_option("ops")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_test_id("invitation-row")).to_contain_text("oscar@acme.test")
    page.get_by_role("button", name="Log out").click()

    link = re.search(r"http\S+/invite/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.get_by_label("Your name").fill("Oscar Ops")
    page.get_by_label("Username").fill("oscar")
    page.get_by_label("Password", exact=True).fill("a long pass phrase 42")
    page.get_by_label("Password again").fill("a long pass phrase 42")
    page.get_by_role("button", name="Create my account and join").click()
    expect(page.get_by_text("Welcome to Acme.")).to_be_visible()

    page.get_by_role("link", name="oscar").click()
    page.get_by_test_id("enrol-totp").click()
    secret = page.get_by_test_id("totp-secret").inner_text()
    code = f"{totp(base64.b32decode(secret)):06d}"
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_test_id("recovery-codes")).to_be_visible()
    page.get_by_role("link", name="Done").click()

    page.get_by_role("link", name="Connections", exact=True).click()
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(page.locator(".badge.role-ops")).to_have_text("Ops")
    assert violations == []
