"""In a browser: the app page's Copy button copies the inbound URL, and Regenerate asks
first and then shows the new URL."""

import pytest
from playwright.sync_api import Browser, expect

from connections.models import PrivateApp
from connections.webhooks_inbound import inbound_url
from tests import factories
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RECORD_COPY = """
Object.defineProperty(Navigator.prototype, "clipboard", {get: () => undefined});
window.copied = [];
document.execCommand = (command) => {
  if (command === "copy") { window.copied.push(String(window.getSelection())); }
  return true;
};
"""


def test_copy_and_regenerate_the_inbound_url(portal_url, browser: Browser, acme, alice):
    app = factories.app(acme, "manu_online")
    context = browser.new_context()
    context.add_init_script(RECORD_COPY)
    sign_in(context, portal_url, alice)
    page = context.new_page()
    try:
        page.goto(f"{portal_url}/t/acme/apps/{app.pk}/")
        url = inbound_url(app)
        expect(page.locator("#webhook-url")).to_have_text(url)
        page.locator('button[data-copy="webhook-url"]').click()
        assert page.evaluate("window.copied") == [url]

        asked = []
        page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
        page.get_by_test_id("webhook-regenerate").click()
        assert asked and "stops working" in asked[0]
        assert PrivateApp.objects.get(pk=app.pk).webhook_token == app.webhook_token

        page.once("dialog", lambda d: d.accept())
        page.get_by_test_id("webhook-regenerate").click()
        page.wait_for_url(f"**/t/acme/apps/{app.pk}/")
        new = inbound_url(PrivateApp.objects.get(pk=app.pk))
        assert new != url
        expect(page.locator("#webhook-url")).to_have_text(new)
    finally:
        context.close()
