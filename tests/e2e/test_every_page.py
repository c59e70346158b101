"""Every page an admin can reach, at a laptop's and a phone's width: nothing runs off the side
of the screen, and axe-core finds no serious or critical accessibility problem.

One data set covers what makes pages long or wide: an app of each provider (and a pending and
a disabled one), connections in each status, audit events, inbound webhooks, deliveries to a
listener with their attempts, a pending invitation and an app whose name is 120 characters
with no space to break at.
"""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect

from connections import webhook_listener
from connections.models import AuditEvent, ClientSecret, Connection, InboundDelivery
from connections.people import invitation_create
from connections.providers import PROVIDERS
from connections.webhook_events import DEFAULT_EVENTS, EventType
from portal.models import Membership
from tests import factories
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
LONG_NAME = ("Warehouse" + "Synchronisation" * 7 + "Nightly0123456")[:120]  # the longest allowed, no space
AXE = Axe()
EXPECTED_STATUS = {"403": 403, "404": 404, "callback error": 400}
# Pages (by the end of their name) whose form is also checked as it comes back with errors,
# submitted empty.
SUBMIT_EMPTY = {
    "register": "main form.card",
    "secret add": "main form.card",
    "members": "[data-testid=invite-form]",
    "listener settings": "[data-testid=listener-form]",
}

# What sticks out past the right edge of the window, outside any box that scrolls or clips
# (a table in its .table-wrap may be wider than the screen: it scrolls inside its box).
OVERFLOW_JS = """() => {
  const width = window.innerWidth;
  const inScroller = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(el).visibility === "hidden") continue;
    if (box.right > width + 1 && !inScroller(el)) out.push(name(el) + " right=" + Math.round(box.right));
  }
  // Text overflows its element without widening the element's own box: measure the text.
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim() || inScroller(node)) continue;
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width && box.right > width + 1) out.push("text '" + node.data.trim().slice(0, 40) + "' right=" + Math.round(box.right));
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, out: out.slice(0, 8)};
}"""


def build_data(acme, globex, alice):
    """The pages to visit, as (name, path), over one data set."""
    Membership.objects.create(user=alice, tenant=globex, role=Membership.Role.MEMBER)  # switcher
    now = timezone.now()
    apps = {key: factories.app(acme, key) for key in PROVIDERS}
    long_app = factories.app(acme, "manus", name=LONG_NAME)
    for app in (*apps.values(), long_app):
        ClientSecret.objects.create(
            app=app, value="s" * 28 + "WXYZ", last_four="WXYZ", is_primary=True, label="first"
        )
    conns = {}
    for status in Connection.Status:
        conns[status] = factories.connection(
            long_app if status == Connection.Status.ACTIVE else apps["manu_online"],
            user=alice,
            status=status,
            account_name=f"{status.label} account " + "x" * 60,
            last_error="" if status == Connection.Status.ACTIVE else "invalid_grant: " + "y" * 200,
        )
    for i, kind in enumerate(AuditEvent.Kind):
        factories.event(
            conns[Connection.Status.FAILING],
            kind,
            at=now - timedelta(minutes=i),
            message=f"{kind.label}: " + "z" * 150,
            request_id="req-" + "0123456789abcdef" * 4,
        )
    invited = invitation_create(
        tenant=acme, email="someone.with.a.long.address@example.test", role="ops", actor=alice,
        send=False,
    )
    empty = factories.app(acme, "generic", name="Nothing connected")
    pending = factories.app(acme, "manu_online", status="pending")
    disabled = factories.app(acme, "manus", status="disabled")
    paused = factories.connection(disabled, user=alice)
    verified = InboundDelivery.objects.create(
        tenant=acme,
        app=long_app,
        connection=conns[Connection.Status.ACTIVE],
        result="verified",
        delivery_id="evt_" + "0123456789abcdef" * 4,
        headers={"Content-Type": "application/json", "X-Webhook-Id": "evt_" + "a" * 60},
        body=b'{"account_id": "' + b"9" * 200 + b'", "event": "task.done"}',
        body_size=240,
        account_id="9" * 200,
    )
    rejected = InboundDelivery.objects.create(
        tenant=acme, app=long_app, result="rejected", reason="bad_signature",
        message="The signature does not match the app's secret.", body_size=10,
    )
    InboundDelivery.objects.create(
        tenant=acme, app=apps["manu_online"], result="verified", malformed=True,
        body=b"not json " * 30, body_size=270,
    )
    # The long-named app's listener: a long URL, a rotated secret (two listed), and
    # deliveries in each status, the relayed one with attempts of every kind.
    webhook_listener.configure(
        app=long_app,
        actor=alice,
        listener_url="https://listener.example.com/" + "hooks/" * 12 + "portal?tenant=" + "a" * 80,
        listener_sync=True,
        listener_events=list(DEFAULT_EVENTS),
        lapse_warning_days=7,
    )
    webhook_listener.rotate_secret(app=long_app, actor=alice)
    relayed = factories.outbound_delivery(
        long_app,
        EventType.RECEIVED,
        connection=conns[Connection.Status.ACTIVE],
        inbound=verified,
        status="failed",
        attempts=3,
        last_status_code=502,
        last_error="the listener answered 502; gave up after 3 attempts " + "e" * 120,
        last_duration_ms=10000,
        next_attempt_at=None,
        body=b'{"type": "webhook.received", "data": {"raw": "' + b"r" * 300 + b'"}}',
    )
    for attempt in (
        {"status_code": None, "error": "no answer within 5 s", "synchronous": True},
        {"status_code": 307, "error": "the listener redirected (307); redirects are not followed"},
        {"status_code": 502, "response_excerpt": "<html>" + "Bad gateway " * 24},
    ):
        factories.outbound_attempt(relayed, **attempt)
    for status in ("pending", "sending", "delivered"):
        factories.outbound_delivery(
            long_app, connection=conns[Connection.Status.ACTIVE], status=status, attempts=1,
            last_status_code=200, last_duration_ms=42,
        )
    t = "/t/acme"
    pages = [
        ("tenant picker", "/"),
        ("dashboard", f"{t}/"),
        ("apps", f"{t}/apps/"),
        ("provider picker", f"{t}/apps/new/"),
        ("provider picker, nothing chosen", f"{t}/apps/new/?provider=nope"),
        ("long-named app", f"{t}/apps/{long_app.pk}/"),
        ("long-named app, edit", f"{t}/apps/{long_app.pk}/edit/"),
        ("secret add", f"{t}/apps/{long_app.pk}/secrets/new/"),
        ("delete, still connected", f"{t}/apps/{apps['manu_online'].pk}/delete/"),
        ("delete", f"{t}/apps/{empty.pk}/delete/"),
        ("pending app", f"{t}/apps/{pending.pk}/"),
        ("disabled app", f"{t}/apps/{disabled.pk}/"),
        ("connection of a disabled app", f"{t}/connections/{paused.pk}/"),
        ("connections", f"{t}/connections/"),
        ("report", f"{t}/report/"),
        ("audit", f"{t}/audit/"),
        ("webhooks", f"{t}/webhooks/"),
        ("webhooks of an app", f"{t}/apps/{long_app.pk}/webhooks/"),
        ("webhook, verified", f"{t}/webhooks/{verified.pk}/"),
        ("webhook, rejected", f"{t}/webhooks/{rejected.pk}/"),
        ("webhooks sent", f"{t}/webhooks/sent/"),
        ("webhooks sent of an app", f"{t}/apps/{long_app.pk}/webhooks/sent/"),
        ("webhook sent, with attempts", f"{t}/webhooks/sent/{relayed.pk}/"),
        ("listener settings", f"{t}/apps/{long_app.pk}/webhooks/listener/"),
        ("members", f"{t}/members/"),
        ("API keys", f"{t}/api-keys/"),
        ("profile", "/profile/"),
        ("two-factor setup", "/profile/2fa/"),
        ("callback error", "/oauth/callback/"),
        ("404", f"{t}/apps/999999/"),
    ]
    for key, app in apps.items():
        pages += [
            (f"{key} app", f"{t}/apps/{app.pk}/"),
            (f"{key} app, edit", f"{t}/apps/{app.pk}/edit/"),
            (f"{key} register", f"{t}/apps/new/?provider={key}"),
        ]
    pages += [(f"{s.value} connection", f"{t}/connections/{c.pk}/") for s, c in conns.items()]
    return pages, f"/invite/{invited.token}/"


def problems_of(page: Page, name: str) -> list[str]:
    found = []
    layout = page.evaluate(OVERFLOW_JS)
    if layout["scrollWidth"] > layout["width"] or layout["out"]:
        found.append(f"{name}: page {layout['scrollWidth']} px wide in {layout['width']}; {layout['out']}")
    violations = AXE.run(page).response["violations"]
    for v in violations:
        if v["impact"] in ("serious", "critical"):
            targets = [n["target"] for n in v["nodes"][:3]]
            found.append(f"{name}: axe {v['id']} ({v['impact']}): {v['help']} at {targets}")
    return found


def visit(page: Page, url: str, name: str) -> list[str]:
    response = page.goto(url)
    status = response.status if response else None
    if status != EXPECTED_STATUS.get(name, 200):
        return [f"{name}: HTTP {status} at {url}"]
    found = problems_of(page, name)
    form_selector = next((v for k, v in SUBMIT_EMPTY.items() if name.endswith(k)), None)
    if form_selector:
        form = page.locator(form_selector)
        form.locator("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), textarea").evaluate_all(
            "fields => fields.forEach(f => { f.value = ''; })"
        )
        form.locator("button[type=submit]").first.click()
        page.locator("[data-testid=error-summary]").wait_for()
        page.wait_for_load_state("load")  # the new page's stylesheet, before measuring it
        found += problems_of(page, f"{name}, with errors")
    return found


@pytest.fixture
def production_errors(settings):
    """The 403 and 404 pages as people see them (DEBUG shows Django's technical 404)."""
    settings.DEBUG = False


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_page_fits_the_screen_and_passes_axe(
    live_server, browser: Browser, production_errors, acme, globex, alice, bob, olive, viewport
):
    pages, invitation = build_data(acme, globex, alice)
    base = live_server.url
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    problems: list[str] = []
    try:
        # Signed out: the login page, and a wrong password says so once.
        problems += visit(page, f"{base}/login/", "login")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "not the password")
        page.click("button[type=submit]")
        page.locator("[data-testid=error-summary]").wait_for()
        said = page.get_by_text("Please enter a correct username and password")
        if said.count() != 1:
            problems.append(f"login: the wrong-password error shows {said.count()} times")
        problems += problems_of(page, "login, wrong password")
        problems += visit(page, base + invitation, "invitation, signed out")

        sign_in(context, base, alice)
        for name, path in pages:
            problems += visit(page, base + path, name)

        # Ops may not manage people: the 403 page.
        context.clear_cookies()
        sign_in(context, base, olive)
        problems += visit(page, f"{base}/t/acme/members/", "403")

        # After the password, someone with an authenticator app gives its code.
        TOTPDevice.objects.create(user=bob, name="phone", confirmed=True)
        context.clear_cookies()
        sign_in(context, base, bob)
        problems += visit(page, f"{base}/login/2fa/", "two-factor code")
        page.fill("#id_code", "000000")
        page.get_by_role("button", name="Continue").click()
        page.locator("[data-testid=error-summary]").wait_for()
        page.wait_for_load_state("load")
        problems += problems_of(page, "two-factor code, wrong")
    finally:
        context.close()
    assert not problems, f"{len(problems)} problems at {viewport} width:\n" + "\n".join(problems)


def test_the_phone_menu_folds_and_opens(live_server, browser: Browser, acme, alice):
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    try:
        sign_in(context, live_server.url, alice)
        page.goto(f"{live_server.url}/t/acme/")
        menu_button = page.get_by_role("button", name="Menu")
        log_out = page.get_by_role("button", name="Log out")
        expect(log_out).to_be_hidden()
        expect(menu_button).to_have_attribute("aria-expanded", "false")
        menu_button.click()
        expect(log_out).to_be_in_viewport(ratio=1)
        expect(menu_button).to_have_attribute("aria-expanded", "true")
    finally:
        context.close()


def test_on_a_phone_the_filters_fold_unless_some_are_applied(
    live_server, browser: Browser, acme, alice
):
    factories.connection(factories.app(acme, "manus"), user=alice)
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    try:
        sign_in(context, live_server.url, alice)
        page.goto(f"{live_server.url}/t/acme/connections/")
        expect(page.get_by_test_id("filters")).to_be_hidden()
        expect(page.get_by_test_id("connections-table")).to_be_visible()
        page.get_by_text("Filters").click()
        expect(page.get_by_test_id("filters")).to_be_visible()
        page.goto(f"{live_server.url}/t/acme/connections/?status=active")
        expect(page.get_by_test_id("filters")).to_be_visible()
        expect(page.get_by_text("applied")).to_be_visible()
    finally:
        context.close()


def test_without_javascript_the_phone_menu_is_simply_open(live_server, browser: Browser, acme, alice):
    context = browser.new_context(viewport=VIEWPORTS["phone"], java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(context, live_server.url, alice)
        page.goto(f"{live_server.url}/t/acme/")
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        expect(page.get_by_role("button", name="Log out")).to_be_in_viewport(ratio=1)
    finally:
        context.close()


def test_a_desktop_shows_the_menu_without_a_button(live_server, page: Page, acme, alice):
    sign_in(page.context, live_server.url, alice)
    page.goto(f"{live_server.url}/t/acme/")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()


def test_the_skip_link_comes_first_and_moves_to_the_content(live_server, page: Page, acme, alice):
    sign_in(page.context, live_server.url, alice)
    page.goto(f"{live_server.url}/t/acme/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()


def test_a_form_with_errors_starts_at_its_summary_whose_links_reach_the_fields(
    live_server, page: Page, acme, alice
):
    sign_in(page.context, live_server.url, alice)
    page.goto(f"{live_server.url}/t/acme/apps/new/?provider=nope")
    summary = page.get_by_test_id("error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link").first.click()
    expect(page.locator("#id_provider_0")).to_be_focused()  # the first radio of the group
