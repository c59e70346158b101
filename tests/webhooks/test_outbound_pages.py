"""The listener settings page (signing secrets shown once, rotation), the sent-deliveries
pages (filters, keyset pages, Redeliver), the app page's Listener section, and tenant
isolation and roles on each."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import webhook_listener
from connections.models import AuditEvent, InboundDelivery, OutboundDelivery, SigningSecret
from connections.webhook_events import DEFAULT_EVENTS, EventType
from tests import factories

pytestmark = pytest.mark.django_db
Status = OutboundDelivery.Status
HOOK = "https://hooks.acme.example/portal"


def settings_url(app, slug="acme"):
    return reverse("webhook_listener", args=[slug, app.pk])


def rotate_url(app, slug="acme"):
    return reverse("webhook_listener_rotate", args=[slug, app.pk])


def form_data(**changes):
    return {
        "listener_url": HOOK,
        "listener_events": list(DEFAULT_EVENTS),
        "lapse_warning_days": "7",
        **changes,
    }


def secret_values(app) -> list[str]:
    return [s.value for s in SigningSecret.objects.filter(app=app)]


@pytest.fixture
def configured(manu_app, alice):
    """manu_app with a listener and its first signing secret (the value returned)."""
    secret = webhook_listener.configure(
        app=manu_app,
        actor=alice,
        listener_url=HOOK,
        listener_sync=False,
        listener_events=list(DEFAULT_EVENTS),
        lapse_warning_days=7,
    )
    manu_app.refresh_from_db()
    return manu_app, secret


@pytest.fixture
def sent(configured, bob):
    """Deliveries of manu_app: a delivered relay (of an inbound webhook, with two attempts),
    a failed event and a pending one."""
    app, _ = configured
    conn = factories.connection(app, user=bob, account_name="Acme Oy")
    inbound = InboundDelivery.objects.create(
        tenant=app.tenant, app=app, connection=conn, result="verified", body=b"{}", body_size=2
    )
    relayed = factories.outbound_delivery(
        app,
        EventType.RECEIVED,
        connection=conn,
        inbound=inbound,
        status=Status.DELIVERED,
        attempts=2,
        last_status_code=200,
        last_duration_ms=87,
        next_attempt_at=None,
        body=b'{"type": "webhook.received", "marker": "payload-marker"}',
    )
    factories.outbound_attempt(
        relayed, status_code=503, error="the listener answered 503", response_excerpt="busy-marker"
    )
    factories.outbound_attempt(relayed, status_code=200, duration_ms=87, synchronous=True)
    failed = factories.outbound_delivery(
        app,
        EventType.REFRESH_FAILED,
        connection=conn,
        status=Status.FAILED,
        attempts=8,
        last_error="could not connect to the listener; gave up after 8 attempts",
        next_attempt_at=None,
    )
    factories.outbound_attempt(failed, status_code=None, error="could not connect to the listener")
    pending = factories.outbound_delivery(
        app, EventType.CREATED, status=Status.PENDING, attempts=1, last_status_code=500
    )
    return {"relayed": relayed, "failed": failed, "pending": pending, "inbound": inbound}


# --- the listener settings page -------------------------------------------------------------


def test_the_form_says_what_each_setting_does(login, alice, manu_app, settings):
    settings.WEBHOOK_SYNC_DEADLINE = 4.5
    response = login(alice).get(settings_url(manu_app))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Synchronous mode" in page and "up to 4.5 s" in page
    assert "is off by default" in page
    form = response.context["form"]
    assert EventType.REFRESHED not in form["listener_events"].value()
    assert set(form["listener_events"].value()) == set(DEFAULT_EVENTS)
    assert 'value="connection.refreshed"' in page  # offered, not ticked
    assert "No signing secret yet" in page


def test_saving_a_listener_shows_its_signing_secret_once(login, alice, manu_app):
    client = login(alice)
    response = client.post(settings_url(manu_app), form_data(listener_sync="on"), follow=True)
    assert response.redirect_chain[-1][0] == settings_url(manu_app)
    manu_app.refresh_from_db()
    assert manu_app.listener_url == HOOK and manu_app.listener_sync is True
    assert manu_app.listener_events == list(DEFAULT_EVENTS)
    [secret] = secret_values(manu_app)
    page = response.content.decode()
    assert secret.startswith("whsec_") and secret in page
    assert 'data-testid="signing-secret-once"' in page and "will not be shown again" in page
    assert 'data-copy="secret-once-value"' in page
    assert f"whsec_…{secret[-4:]}" in page
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.WEBHOOK_LISTENER_CHANGED).exists()
    # A reload shows the last four only.
    again = client.get(settings_url(manu_app)).content.decode()
    assert secret not in again and 'data-testid="signing-secret-once"' not in again
    assert f"whsec_…{secret[-4:]}" in again
    # Saving again makes no second secret, and shows none.
    resaved = client.post(settings_url(manu_app), form_data(lapse_warning_days="14"), follow=True)
    assert len(secret_values(manu_app)) == 1
    assert 'data-testid="signing-secret-once"' not in resaved.content.decode()
    manu_app.refresh_from_db()
    assert manu_app.lapse_warning_days == 14 and manu_app.listener_sync is False


def test_refreshed_can_be_subscribed_and_events_keep_one_order(login, alice, manu_app):
    chosen = [EventType.REVOKED, EventType.REFRESHED, EventType.CREATED]
    login(alice).post(settings_url(manu_app), form_data(listener_events=chosen))
    manu_app.refresh_from_db()
    assert manu_app.listener_events == [EventType.CREATED, EventType.REFRESHED, EventType.REVOKED]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.0.0.1/hook", "must use https"),
        ("https://10.0.0.1/hook", "10.0.0.1 is not a public address"),
        ("https://127.0.0.1/hook", "127.0.0.1 is not a public address"),
        ("https://localhost/hook", "localhost is an internal name"),
        ("http://hooks.acme.example/", "must use https"),
        ("https://metadata.google.internal/", "is an internal name"),
        ("https://user:pw@hooks.acme.example/", "must not carry a user name or password"),
        ("not a url at all", "Enter a valid URL"),
    ],
)
def test_a_url_the_portal_does_not_send_to_is_a_form_error(
    login, alice, manu_app, settings, url, why
):
    settings.SANDBOX_ENABLED = False
    response = login(alice).post(settings_url(manu_app), form_data(listener_url=url))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="error-summary"' in page and why in page
    manu_app.refresh_from_db()
    assert manu_app.listener_url == "" and not secret_values(manu_app)


def test_loopback_is_a_listener_while_the_sandbox_is_on(login, alice, manu_app, settings):
    settings.SANDBOX_ENABLED = True
    login(alice).post(settings_url(manu_app), form_data(listener_url="http://127.0.0.1:9/hook"))
    manu_app.refresh_from_db()
    assert manu_app.listener_url == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize("days", ["0", "366", "", "x"])
def test_lapse_warning_days_are_one_to_365(login, alice, manu_app, days):
    response = login(alice).post(settings_url(manu_app), form_data(lapse_warning_days=days))
    assert (
        response.status_code == 200 and 'data-testid="error-summary"' in response.content.decode()
    )
    manu_app.refresh_from_db()
    assert manu_app.listener_url == ""


def test_a_blank_url_removes_the_listener(login, alice, configured):
    app, _ = configured
    response = login(alice).post(settings_url(app), form_data(listener_url=""), follow=True)
    assert "has no listener now" in response.content.decode()
    app.refresh_from_db()
    assert app.listener_url == ""


def test_rotating_shows_the_new_secret_once_and_lists_both(login, alice, configured, settings):
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 24
    app, first = configured
    client = login(alice)
    before = client.get(settings_url(app)).content.decode()
    assert 'data-testid="rotate-secret"' in before and "data-confirm=" in before
    assert "keeps signing for 24 hours" in before
    response = client.post(rotate_url(app), follow=True)
    assert response.redirect_chain[-1][0] == settings_url(app)
    page = response.content.decode()
    values = secret_values(app)
    [new] = [v for v in values if v != first]
    assert len(values) == 2
    assert new in page and first not in page
    assert page.count('data-testid="signing-secret-row"') == 2
    assert f"whsec_…{first[-4:]}" in page and f"whsec_…{new[-4:]}" in page
    assert 'data-testid="overlap"' in page and "both signatures" in page
    old = SigningSecret.objects.get(app=app, last_four=first[-4:])
    assert timedelta(hours=23) < old.expires_at - timezone.now() <= timedelta(hours=24)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.WEBHOOK_SECRET_ROTATED).exists()
    again = client.get(settings_url(app)).content.decode()
    assert new not in again and first not in again
    assert again.count('data-testid="signing-secret-row"') == 2
    assert 'data-testid="overlap-note"' in again


def test_rotate_is_post_only(login, alice, configured):
    app, _ = configured
    assert login(alice).get(rotate_url(app)).status_code == 405
    assert len(secret_values(app)) == 1


def test_a_secret_past_its_overlap_is_not_listed(login, alice, configured):
    app, first = configured
    webhook_listener.rotate_secret(app=app, actor=alice)
    SigningSecret.objects.filter(app=app, last_four=first[-4:]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    page = login(alice).get(settings_url(app)).content.decode()
    assert page.count('data-testid="signing-secret-row"') == 1
    assert f"whsec_…{first[-4:]}" not in page and 'data-testid="overlap-note"' not in page


def test_only_admins_reach_the_listener_settings(login, bob, olive, configured):
    app, _ = configured
    for user in (bob, olive):
        client = login(user)
        assert client.get(settings_url(app)).status_code == 403
        assert client.post(settings_url(app), form_data(listener_url="")).status_code == 403
        assert client.post(rotate_url(app)).status_code == 403
    app.refresh_from_db()
    assert app.listener_url == HOOK and len(secret_values(app)) == 1


# --- the sent deliveries pages --------------------------------------------------------------


def test_the_tenant_page_lists_what_was_sent(login, alice, sent):
    page = login(alice).get(reverse("webhook_sent_list", args=["acme"])).content.decode()
    assert page.count('data-testid="sent-row"') == 3
    for status in ("Delivered", "Failed", "Pending"):
        assert f">{status}</span>" in page
    assert "status-delivered" in page and "status-failed" in page
    assert "Provider webhook relayed" in page and "<code>webhook.received</code>" in page
    assert "gave up after 8 attempts" in page and "87 ms" in page
    conn_url = reverse("connection_detail", args=["acme", sent["relayed"].connection_id])
    assert conn_url in page
    assert "payload-marker" not in page  # payloads only on a delivery's own page
    assert '<span class="exact"' in page  # times in words with the exact time beside them


def test_the_sent_pages_filter_by_status_event_and_app(login, alice, sent, manus_app):
    factories.outbound_delivery(manus_app, EventType.CREATED, status=Status.FAILED)
    client = login(alice)
    url = reverse("webhook_sent_list", args=["acme"])

    def rows(query, at=url):
        return client.get(at, query).content.decode().count('data-testid="sent-row"')

    assert rows({}) == 4
    assert rows({"status": "failed"}) == 2
    assert rows({"event_type": EventType.CREATED}) == 2
    assert rows({"event_type": EventType.CREATED, "status": "pending"}) == 1
    assert rows({"app": manus_app.pk}) == 1
    app_url = reverse("app_webhook_sent_list", args=["acme", sent["failed"].app_id])
    assert rows({}, at=app_url) == 3
    assert rows({"status": "failed"}, at=app_url) == 1
    assert 'name="app"' not in client.get(app_url).content.decode()  # the page is the app's


def test_the_sent_pages_go_back_in_time_by_keyset(login, alice, manu_app):
    now = timezone.now()
    for n in range(55):
        factories.outbound_delivery(manu_app, created_at=now - timedelta(seconds=n))
    client = login(alice)
    url = reverse("webhook_sent_list", args=["acme"])
    first = client.get(url, {"status": "pending"})
    assert first.content.decode().count('data-testid="sent-row"') == 50
    older = first.context["older"]
    assert older and "status=pending" in older
    second = client.get(url + older)
    assert second.content.decode().count('data-testid="sent-row"') == 5
    assert not second.context["older"] and second.context["newest"]


def test_nonsense_filters_are_a_page_not_a_crash(login, alice, manu_app):
    url = reverse("webhook_sent_list", args=["acme"])
    for query in (
        {"status": "x"},
        {"event_type": "nope"},
        {"app": "abc"},
        {"before": "-1"},
        {"before": str(2**70)},
    ):
        assert login(alice).get(url, query).status_code == 200


def test_a_delivery_page_shows_its_attempts_id_and_payload_to_admins(login, alice, sent):
    relayed = sent["relayed"]
    page = login(alice).get(reverse("webhook_sent_detail", args=["acme", relayed.pk]))
    html = page.content.decode()
    assert relayed.message_id in html
    assert html.count('data-testid="attempt-row"') == 2
    assert "busy-marker" in html and "503" in html and "87 ms" in html
    assert "yes: in the provider" in html  # the synchronous attempt
    assert "payload-marker" in html
    assert reverse("webhook_detail", args=["acme", sent["inbound"].pk]) in html
    assert 'data-testid="redeliver"' in html


def test_the_inbound_delivery_links_to_what_it_was_relayed_as(login, alice, sent):
    inbound = sent["inbound"]
    page = login(alice).get(reverse("webhook_detail", args=["acme", inbound.pk])).content.decode()
    sent_url = reverse("webhook_sent_detail", args=["acme", sent["relayed"].pk])
    assert sent_url in page and 'data-testid="relayed-to"' in page


def test_the_received_and_sent_pages_are_tabs_of_each_other(login, alice, manu_app):
    client = login(alice)
    received = reverse("webhook_list", args=["acme"])
    sent_url = reverse("webhook_sent_list", args=["acme"])
    for here, there in ((received, sent_url), (sent_url, received)):
        page = client.get(here).content.decode()
        assert f'<a href="{there}">' in page and f'<a href="{here}" aria-current="page">' in page
    app_received = reverse("app_webhook_list", args=["acme", manu_app.pk])
    app_sent = reverse("app_webhook_sent_list", args=["acme", manu_app.pk])
    assert app_sent in client.get(app_received).content.decode()
    assert app_received in client.get(app_sent).content.decode()


def test_ops_read_the_lists_but_neither_the_payload_nor_redeliver(login, olive, sent):
    client = login(olive)
    assert client.get(reverse("webhook_sent_list", args=["acme"])).status_code == 200
    app_list = reverse("app_webhook_sent_list", args=["acme", sent["failed"].app_id])
    assert client.get(app_list).status_code == 200
    detail = client.get(reverse("webhook_sent_detail", args=["acme", sent["failed"].pk]))
    html = detail.content.decode()
    assert detail.status_code == 200 and 'data-testid="payload-hidden"' in html
    assert 'data-testid="redeliver"' not in html and 'data-testid="payload"' not in html
    relayed = client.get(reverse("webhook_sent_detail", args=["acme", sent["relayed"].pk]))
    assert "payload-marker" not in relayed.content.decode()
    assert (
        client.post(reverse("webhook_redeliver", args=["acme", sent["failed"].pk])).status_code
        == 403
    )
    sent["failed"].refresh_from_db()
    assert sent["failed"].status == Status.FAILED


def test_members_may_not_read_what_was_sent(login, bob, sent):
    client = login(bob)
    failed = sent["failed"]
    for url in (
        reverse("webhook_sent_list", args=["acme"]),
        reverse("webhook_sent_detail", args=["acme", failed.pk]),
        reverse("app_webhook_sent_list", args=["acme", failed.app_id]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("webhook_redeliver", args=["acme", failed.pk])).status_code == 403


def test_redeliver_puts_a_failed_delivery_back_to_pending(login, alice, sent):
    failed = sent["failed"]
    url = reverse("webhook_redeliver", args=["acme", failed.pk])
    assert login(alice).get(url).status_code == 405
    response = login(alice).post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "webhook_sent_detail", args=["acme", failed.pk]
    )
    assert "will be sent again" in response.content.decode()
    failed.refresh_from_db()
    assert failed.status == Status.PENDING and failed.attempts == 0
    assert failed.next_attempt_at <= timezone.now()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.WEBHOOK_REDELIVERED).count() == 1
    # Now on its way: no button, and a second POST says so.
    page = login(alice).get(reverse("webhook_sent_detail", args=["acme", failed.pk]))
    assert 'data-testid="redeliver"' not in page.content.decode()
    again = login(alice).post(url, follow=True)
    assert "still on its way" in again.content.decode()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.WEBHOOK_REDELIVERED).count() == 1


def test_a_delivered_one_can_be_sent_again_too(login, alice, sent):
    relayed = sent["relayed"]
    login(alice).post(reverse("webhook_redeliver", args=["acme", relayed.pk]))
    relayed.refresh_from_db()
    assert relayed.status == Status.PENDING


def test_another_tenants_deliveries_and_apps_are_404_everywhere(login, carol, globex, sent):
    app, failed = sent["failed"].app, sent["failed"]
    client = login(carol)
    for slug in ("acme", "globex"):  # acme: not her tenant; globex: not its objects
        for url in (
            reverse("webhook_sent_detail", args=[slug, failed.pk]),
            reverse("app_webhook_sent_list", args=[slug, app.pk]),
            settings_url(app, slug),
        ):
            assert client.get(url).status_code == 404, url
        for url, data in (
            (reverse("webhook_redeliver", args=[slug, failed.pk]), {}),
            (settings_url(app, slug), form_data(listener_url="")),
            (rotate_url(app, slug), {}),
        ):
            assert client.post(url, data).status_code == 404, url
    assert client.get(reverse("webhook_sent_list", args=["acme"])).status_code == 404
    own = client.get(reverse("webhook_sent_list", args=["globex"]))
    assert 'data-testid="sent-row"' not in own.content.decode()
    assert app.pk not in [pk for pk, _ in own.context["form"].fields["app"].choices]
    foreign_filter = client.get(reverse("webhook_sent_list", args=["globex"]), {"app": app.pk})
    assert 'data-testid="sent-row"' not in foreign_filter.content.decode()
    failed.refresh_from_db()
    app.refresh_from_db()
    assert failed.status == Status.FAILED
    assert app.listener_url == HOOK and len(secret_values(app)) == 1


def test_no_signing_secret_is_on_the_pages(login, alice, sent, configured):
    app, first = configured
    client = login(alice)
    for url in (
        reverse("app_detail", args=["acme", app.pk]),
        settings_url(app),
        reverse("webhook_sent_list", args=["acme"]),
        reverse("webhook_sent_detail", args=["acme", sent["relayed"].pk]),
    ):
        assert first not in client.get(url).content.decode(), url


# --- the app page's Listener section -------------------------------------------------------


def test_the_app_page_says_when_there_is_no_listener(login, alice, manu_app):
    page = login(alice).get(reverse("app_detail", args=["acme", manu_app.pk])).content.decode()
    assert 'data-testid="no-listener"' in page and "No listener" in page
    assert settings_url(manu_app) in page
    assert 'data-testid="listener-failed"' not in page


def test_the_app_page_sums_the_listener_up_and_warns_of_failures(login, alice, sent):
    app = sent["failed"].app
    factories.outbound_delivery(app, status=Status.FAILED)
    old = timezone.now() - timedelta(hours=25)
    factories.outbound_delivery(app, status=Status.FAILED, created_at=old)
    page = login(alice).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert f'<code data-testid="listener-url">{HOOK}</code>' in page
    assert "In the background" in page
    assert f"{len(DEFAULT_EVENTS)} of {len(EventType.values)} subscribed" in page
    assert "2 failed in the last 24 hours" in page
    assert settings_url(app) in page
    assert reverse("app_webhook_sent_list", args=["acme", app.pk]) in page


def test_ops_see_the_section_without_the_settings_link_and_members_not_at_all(
    login, olive, bob, sent
):
    app = sent["failed"].app
    url = reverse("app_detail", args=["acme", app.pk])
    ops_page = login(olive).get(url).content.decode()
    assert 'data-testid="listener-section"' in ops_page and settings_url(app) not in ops_page
    assert "1 failed in the last 24 hours" in ops_page
    member_page = login(bob).get(url).content.decode()
    assert 'data-testid="listener-section"' not in member_page and HOOK not in member_page
