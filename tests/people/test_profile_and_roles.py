"""The profile (name, e-mail confirmed by a link, notices, password, sign out everywhere), the
operator commands, notices honouring people's choices, and pages shaped by role."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from connections import alerts
from connections.models import AuditEvent
from connections.views import connections as connection_views
from portal.models import Membership, Profile, Tenant
from tests import factories
from tests.support.people import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_email_is_used_only_after_its_link_is_opened(login, olive, acme, tasks_inline):
    client = login(olive)
    client.post(reverse("profile"), {"first_name": "Olive", "email": "olive@acme.test", "notify_reauth": "on", "notify_digest": "on"})
    olive.refresh_from_db()
    assert olive.email == "" and olive.first_name == "Olive"
    assert alerts.recipients(acme) == []  # not confirmed: not told
    link = re.search(r"http\S+/profile/email/\S+/", mail.outbox[-1].body).group(0)
    client.get("/" + link.split("/", 3)[3])
    olive.refresh_from_db()
    assert olive.email == "olive@acme.test"
    assert alerts.recipients(acme) == ["olive@acme.test"]
    assert "not valid" in client.get("/profile/email/forged/", follow=True).content.decode()


def test_notice_switches_are_honoured_but_owners_are_always_told(acme, alice, bob):
    for user in (alice, bob):
        user.email = f"{user.username}@acme.test"
        user.save()
    Profile.objects.create(user=alice, notify_reauth=False, notify_digest=True)
    assert alerts.recipients(acme) == []
    assert alerts.recipients(acme, wants=alerts.DIGEST) == ["alice@acme.test"]
    assert alerts.recipients(acme, owner_id=bob.pk) == ["bob@acme.test"]


def test_password_change_and_sign_out_everywhere(login, bob, client):
    other = login(bob).__class__()
    other.force_login(bob)
    mine = login(bob)
    changed = mine.post(reverse("password_change"), {"old_password": PASSWORD, "new_password1": "another long phrase 7", "new_password2": "another long phrase 7"})
    assert changed.status_code == 302
    assert mine.get(reverse("profile")).status_code == 200  # this browser stays in
    assert other.get(reverse("profile")).status_code == 302  # the other was signed out
    mine.post(reverse("sign_out_everywhere"))
    assert mine.get(reverse("profile")).status_code == 302
    fresh = client.__class__()
    assert fresh.post("/login/", {"username": "bob", "password": "another long phrase 7"}).status_code == 302
    assert fresh.get(reverse("profile")).status_code == 200  # a new sign-in works


def test_create_tenant_prints_an_invitation_or_takes_a_password_on_stdin(monkeypatch, client):
    out = io.StringIO()
    call_command("create_tenant", "--slug", "initech", "--name", "Initech", "--admin-email", "boss@initech.test", stdout=out, stderr=io.StringIO())
    link = out.getvalue().strip().splitlines()[-1]
    assert "/invite/" in link and Tenant.objects.filter(slug="initech").exists()
    page = client.get("/" + link.split("/", 3)[3])
    assert page.status_code == 200 and "Admin" in page.content.decode()

    monkeypatch.setattr("sys.stdin", io.StringIO("a long operator phrase 9\n"))
    call_command("create_tenant", "--slug", "hooli", "--name", "Hooli", "--admin-email", "g@hooli.test", "--admin-username", "gavin", "--password-stdin", stdout=io.StringIO())
    gavin = get_user_model().objects.get(username="gavin")
    assert gavin.check_password("a long operator phrase 9")
    assert Membership.objects.get(user=gavin).role == "admin"
    with pytest.raises(CommandError) as taken:
        call_command("create_tenant", "--slug", "hooli", "--name", "x", "--admin-email", "a@b.test")
    assert taken.value.returncode == 2
    listing = io.StringIO()
    call_command("list_tenants", stdout=listing)
    assert "hooli" in listing.getvalue() and "gavin <g@hooli.test>" in listing.getvalue()
    assert "1 pending invitations" in listing.getvalue()  # initech's


def test_members_see_what_they_need_of_an_app_and_count_their_own(acme, alice, bob, login):
    app = factories.app(acme, client_id="secret-looking-client-id", scopes=["API_ALL"])
    factories.connection(app, user=alice)
    factories.connection(app, user=bob)
    page = login(bob).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert "secret-looking-client-id" not in page and "Token URL" not in page
    assert "API_ALL" in page and 'data-testid="app-for-members"' in page
    assert 'data-testid="connection-count">1<' in page
    admin_page = login(alice).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert "secret-looking-client-id" in admin_page
    dashboard = login(bob).get(reverse("dashboard", args=["acme"]))
    assert dashboard.context["n_connections"] == 1
    [listed] = login(bob).get(reverse("app_list", args=["acme"])).context["apps"]
    assert listed.n_connections == 1


def test_a_manual_refresh_records_who_clicked(acme, bob, login, monkeypatch):
    from connections import audit

    conn = factories.connection(factories.app(acme), user=bob)

    def refresh(pk, **kwargs):
        audit.record(AuditEvent.Kind.REFRESHED, tenant=conn.tenant, connection=conn)
        return "refreshed"

    monkeypatch.setattr(connection_views.lifecycle, "connection_refresh", refresh)
    login(bob).post(reverse("connection_refresh", args=["acme", conn.pk]))
    assert AuditEvent.objects.get(kind="refreshed").actor == bob
