"""A client secret is at least 16 characters, at most four of them are ever shown, and Django's
error report of a registry view carries none of the secrets posted to it."""

import sys

import pytest
from django.core.signals import got_request_exception
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from connections import services
from connections.forms import AppForm, SecretForm
from connections.models import ClientSecret, PrivateApp
from connections.providers import PROVIDERS

pytestmark = pytest.mark.django_db

TOO_SHORT = "A client secret is at least 16 characters."


# --- the minimum length -----------------------------------------------------------------------


def test_a_new_app_s_secret_is_at_least_16_characters(acme):
    data = {
        "name": "Tasks",
        "client_id": "client_x",
        "pkce_mode": "secret",
        "client_auth": "json",
        "redirect_uris": "https://a.example/cb",
        "scopes": ["create_task"],
        "refresh_policy": "warm",
    }

    def form(secret):
        blank = PrivateApp(tenant=acme, provider="manus")
        return AppForm(
            {**data, "client_secret": secret}, instance=blank, provider=PROVIDERS["manus"]
        )

    short = form("x" * 15)
    assert not short.is_valid()
    assert short.errors["client_secret"] == [TOO_SHORT]
    assert form("x" * 16).is_valid()


def test_an_added_secret_is_at_least_16_characters(manu_app, alice, login):
    assert SecretForm({"value": "y" * 15}, app=manu_app).errors["value"] == [TOO_SHORT]
    assert SecretForm({"value": "y" * 16}, app=manu_app).is_valid()
    url = reverse("secret_add", args=["acme", manu_app.pk])
    response = login(alice).post(url, {"value": "short-secret-15"})
    assert response.status_code == 200
    assert TOO_SHORT in response.content.decode()
    assert manu_app.client_secrets.count() == 1


# --- never more than four characters shown ----------------------------------------------------


def test_a_long_secret_shows_its_last_four_and_a_short_one_shows_none(manu_app):
    long = ClientSecret(app=manu_app, value="long-enough-secret-WXYZ", last_four="WXYZ")
    assert long.masked == str(long) == "••••WXYZ"
    # Stored before the minimum existed: its "last four" would be half of it, or all of it.
    for value in ("abcd", "eight-ch", "fifteen-chars-X"):
        old = ClientSecret(app=manu_app, value=value, last_four=value[-4:])
        assert old.masked == str(old) == "••••"


def test_the_service_keeps_no_tail_of_a_short_secret(manus_app, alice):
    secret = services.secret_add(app=manus_app, actor=alice, value="only-12-char")
    assert secret.last_four == "" and secret.masked == "••••"
    longer = services.secret_add(app=manus_app, actor=alice, value="sixteen-chars-AB")
    assert longer.last_four == "s-AB" and longer.masked == "••••s-AB"


def test_pages_and_admin_show_no_tail_of_an_old_short_secret(manu_app, alice, login, admin_client):
    old = manu_app.client_secrets.create(value="old-short-QRST", last_four="QRST")
    detail = login(alice).get(reverse("app_detail", args=["acme", manu_app.pk])).content.decode()
    assert "QRST" not in detail
    assert "••••AAAA" in detail  # the fixture's secret, 17 characters
    for page in (
        reverse("admin:connections_clientsecret_changelist"),
        reverse("admin:connections_clientsecret_change", args=[old.pk]),
        reverse("admin:connections_privateapp_change", args=[manu_app.pk]),
    ):
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert "QRST" not in response.content.decode(), page


# --- error reports ----------------------------------------------------------------------------


@pytest.fixture
def error_reports(settings):
    """The text and HTML error report of each 500, built as Django's AdminEmailHandler builds
    it (DEBUG off: the filter that honours sensitive_* is active only then)."""
    settings.DEBUG = False
    reports = []

    def build(sender, request, **kwargs):
        reporter = ExceptionReporter(request, *sys.exc_info())
        reports.append(reporter.get_traceback_text() + reporter.get_traceback_html())

    got_request_exception.connect(build)
    yield reports
    got_request_exception.disconnect(build)


@pytest.fixture
def alice_500(alice) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


def explode(*args, **kwargs):
    raise RuntimeError("boom inside the write")


def test_an_app_form_s_error_report_carries_no_posted_secret(alice_500, error_reports, monkeypatch):
    # Raised deep in the write, after the secrets went through the view, the form and the
    # service as arguments and locals.
    monkeypatch.setattr(services.audit, "record", explode)
    url = reverse("app_create", args=["acme"]) + "?provider=manhattan_active"
    response = alice_500.post(
        url,
        {
            "name": "WMS",
            "client_id": "omnicomponent",
            "client_secret": "client-secret-LEAK1",
            "service_username": "svc-username",
            "service_password": "svc-password-LEAK2",
            "token_url": "https://wms.example/oauth/token",
            "api_base_url": "https://wms.example",
        },
    )
    assert response.status_code == 500
    [report] = error_reports
    assert "boom inside the write" in report and "omnicomponent" in report
    assert "LEAK1" not in report and "LEAK2" not in report


def test_an_edit_s_error_report_carries_no_posted_password(
    alice_500, error_reports, monkeypatch, acme, alice
):
    app, _ = services.app_create(
        tenant=acme,
        actor=alice,
        fields={
            "provider": "manhattan_active",
            "name": "WMS",
            "client_id": "omnicomponent",
            "grant_type": "password",
            "service_username": "svc",
            "service_password": "old-password",
            "token_url": "https://wms.example/oauth/token",
            "api_base_url": "https://wms.example",
        },
        client_secret="client-secret-0123456",
    )
    monkeypatch.setattr(services.audit, "record", explode)
    response = alice_500.post(
        reverse("app_edit", args=["acme", app.pk]),
        {
            "name": "WMS",
            "client_id": "omnicomponent",
            "service_password": "new-password-LEAK3",
            "token_url": "https://wms.example/oauth/token",
            "api_base_url": "https://wms.example",
        },
    )
    assert response.status_code == 500
    [report] = error_reports
    assert "boom inside the write" in report
    assert "LEAK3" not in report and "old-password" not in report


def test_a_secret_add_s_error_report_carries_no_posted_secret(
    alice_500, error_reports, monkeypatch, manus_app
):
    monkeypatch.setattr(services, "_secret_event", explode)
    response = alice_500.post(
        reverse("secret_add", args=["acme", manus_app.pk]),
        {"value": "second-secret-LEAK4", "label": "rotation"},
    )
    assert response.status_code == 500
    [report] = error_reports
    assert "boom inside the write" in report and "rotation" in report
    assert "LEAK4" not in report
