"""The Copy button of a one-time value: it says it copied (on the button and to screen
readers), and it works where navigator.clipboard does not exist (a plain-http host)."""

import re

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A plain-http host has no navigator.clipboard. The loopback test server counts as secure, so
# take it away, and record what execCommand("copy") would have put on the clipboard.
PLAIN_HTTP = """
Object.defineProperty(Navigator.prototype, "clipboard", {get: () => undefined});
window.copied = [];
const original = document.execCommand.bind(document);
document.execCommand = (command, ...rest) => {
  if (command === "copy") { window.copied.push(String(window.getSelection())); return true; }
  return original(command, ...rest);
};
"""


def new_key(browser: Browser, base: str, user, init_script: str | None = None):
    context = browser.new_context()
    if init_script:
        context.add_init_script(init_script)
    sign_in(context, base, user)
    page = context.new_page()
    page.goto(f"{base}/t/acme/api-keys/")
    page.fill("#id_name", "billing")
    page.get_by_role("button", name="Create key").click()
    return context, page


def test_copy_falls_back_to_exec_command_on_a_plain_http_host(live_server, browser, acme, alice):
    context, page = new_key(browser, live_server.url, alice, PLAIN_HTTP)
    try:
        value = page.get_by_test_id("new-key").inner_text()
        button = page.locator("button[data-copy]")  # not by role: its name changes as it answers
        button.click()
        expect(button).to_have_text("Copied")
        expect(page.locator("[aria-live=polite]")).to_have_text("Copied to the clipboard")
        assert page.evaluate("window.copied") == [value]
        expect(button).to_have_text("Copy", timeout=5000)  # back after a moment
    finally:
        context.close()


def test_when_the_browser_refuses_the_text_is_selected_for_ctrl_c(live_server, browser, acme, alice):
    refuses = PLAIN_HTTP.replace("return true; }", "return false; }")
    context, page = new_key(browser, live_server.url, alice, refuses)
    try:
        value = page.get_by_test_id("new-key").inner_text()
        button = page.locator("button[data-copy]")
        button.click()
        expect(button).to_have_text(re.compile(r"Ctrl\+C"))
        assert page.evaluate("String(window.getSelection())") == value
    finally:
        context.close()
