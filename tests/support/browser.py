"""Browser-test helpers shared by tests/e2e modules."""

from django.test import Client
from playwright.sync_api import BrowserContext


def sign_in(context: BrowserContext, base: str, user) -> None:
    """A session made by the test client, handed to the browser: signing in through the form
    is tested elsewhere, and once is enough where a test is about something else."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": base}])
