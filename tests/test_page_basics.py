"""What every page shares: the form layout, the error pages, the favicon, the dashboard's
counts and the `when` filter's words."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection
from portal.templatetags.when import exact, in_words, when
from tests import factories
from tests.support.people import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_form_with_errors_has_a_summary_linking_to_each_field(alice, login):
    page = login(alice).post(reverse("members", args=["acme"]), {"email": "", "role": "ops"})
    html = page.content.decode()
    summary = html.split('class="error-summary" role="alert"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#id_email">E-mail address: This field is required.</a>' in summary
    # the label is above the input, the field marked required, its error tied to it
    assert '<label for="id_email">E-mail address</label> <span class="req">required</span>' in html
    assert 'aria-invalid="true" aria-describedby="id_email_error"' in html
    assert 'id="id_email_error"' in html


def test_a_wrong_password_says_so_once(client, alice):
    page = client.post(reverse("login"), {"username": "alice", "password": PASSWORD + "x"})
    assert page.content.decode().count("Please enter a correct username and password") == 1


def test_favicon_ico_points_at_the_svg(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.url.endswith("/portal/favicon.svg")


def test_the_403_page_is_the_portals_own(olive, login):
    page = login(olive).get(reverse("members", args=["acme"]))
    html = page.content.decode()
    assert page.status_code == 403 and "You can't do that here" in html and "Skip to content" in html


def test_a_form_sent_without_its_csrf_token_gets_the_portals_page():
    response = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x"})
    assert response.status_code == 403 and "This form has expired" in response.content.decode()


def test_the_500_page_needs_neither_a_request_nor_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        html = render_to_string("500.html")
    assert "Something went wrong" in html


def test_the_dashboard_links_each_count_to_its_list_with_the_statuses_labels(acme, alice, login):
    app = factories.app(acme)
    factories.connection(app, status=Connection.Status.NEEDS_REAUTH)
    html = login(alice).get(reverse("dashboard", args=["acme"])).content.decode()
    connections = reverse("connection_list", args=["acme"])
    assert f'href="{connections}?status=needs_reauth"' in html
    assert "Needs re-authorisation" in html and ">needs_reauth<" not in html
    assert f'href="{reverse("app_list", args=["acme"])}"' in html


def test_messages_are_announced_and_errors_interrupt(rf):
    messages = [Message(constants.SUCCESS, "Saved."), Message(constants.ERROR, "Refused.")]
    html = render_to_string("base.html", {"messages": messages}, request=rf.get("/"))
    assert '<p class="msg msg-success" role="status">Saved.</p>' in html
    assert '<p class="msg msg-error" role="alert">Refused.</p>' in html


NOW = datetime(2026, 12, 2, 0, 41, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=-5), "just now"),
        (timedelta(seconds=20), "in under a minute"),
        (timedelta(seconds=-50), "1 minute ago"),
        (timedelta(minutes=3, seconds=10), "in 3 minutes"),
        (timedelta(days=-2), "2 days ago"),
    ],
)
def test_times_in_words_are_never_zero_minutes(offset, words):
    assert in_words(NOW + offset, NOW) == words


def test_the_exact_time_is_beside_the_words_with_its_zone_and_no_microseconds():
    assert exact(NOW) == "2 Dec 2026, 00:41 UTC"
    html = when(timezone.now() - timedelta(days=1))
    assert '<span class="exact" data-exact="' in html and "UTC</span>" in html


def test_the_navigation_marks_the_section_you_are_in(acme, alice, login):
    app = factories.app(acme)
    html = login(alice).get(reverse("app_edit", args=["acme", app.pk])).content.decode()
    assert f'<a href="{reverse("app_list", args=["acme"])}" aria-current="page">Apps</a>' in html
    assert f'<a href="{reverse("dashboard", args=["acme"])}">Dashboard</a>' in html
