"""The registry pages: roles, tenant isolation, secret shown once, rotation, status, delete."""

import re

import pytest
from django.urls import reverse

from connections import services
from connections.flow import callback_uri
from connections.models import AuditEvent, ClientSecret, Connection, PrivateApp
from tests import factories

pytestmark = pytest.mark.django_db


def app_urls(app) -> dict[str, str]:
    slug, pk = app.tenant.slug, app.pk
    secret = app.client_secrets.first()
    return {
        "detail": reverse("app_detail", args=[slug, pk]),
        "edit": reverse("app_edit", args=[slug, pk]),
        "status": reverse("app_status", args=[slug, pk]),
        "delete": reverse("app_delete", args=[slug, pk]),
        "secret_add": reverse("secret_add", args=[slug, pk]),
        "secret_primary": reverse("secret_make_primary", args=[slug, pk, secret.pk]),
        "secret_revoke": reverse("secret_revoke", args=[slug, pk, secret.pk]),
    }


CHANGE_URLS = ["edit", "status", "delete", "secret_add", "secret_primary", "secret_revoke"]


def test_members_and_ops_can_view_but_not_change(manu_app, bob, olive, login):
    for user in (bob, olive):
        client = login(user)
        assert client.get(reverse("app_list", args=["acme"])).status_code == 200
        assert client.get(app_urls(manu_app)["detail"]).status_code == 200
        assert client.get(reverse("app_create", args=["acme"])).status_code == 403
        for name in CHANGE_URLS:
            assert client.post(app_urls(manu_app)[name], {"status": "enabled"}).status_code == 403
    manu_app.refresh_from_db()
    assert manu_app.status == "pending"
    assert manu_app.client_secrets.filter(revoked_at__isnull=True).count() == 1


def test_another_tenants_app_is_a_404_on_every_url(manu_app, carol, login):
    client = login(carol)
    urls = app_urls(manu_app)
    for url in urls.values():
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"status": "enabled"}).status_code == 404, url
        # Same object id under carol's own tenant: still not found.
        own = url.replace("/t/acme/", "/t/globex/")
        assert client.get(own).status_code == 404, own
        assert client.post(own, {"status": "enabled"}).status_code == 404, own
    assert client.get(reverse("app_list", args=["acme"])).status_code == 404
    assert client.get(reverse("app_create", args=["acme"])).status_code == 404


def test_a_secret_of_another_app_is_a_404(manu_app, manus_app, alice, login):
    other = manus_app.client_secrets.get()
    url = reverse("secret_revoke", args=["acme", manu_app.pk, other.pk])
    assert login(alice).post(url).status_code == 404
    assert not ClientSecret.objects.get(pk=other.pk).revoked_at


def test_anonymous_users_are_sent_to_log_in(manu_app, client):
    response = client.get(app_urls(manu_app)["detail"])
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_list_shows_status_provider_and_connection_count(manu_app, bob, login, connection_of):
    connection_of(manu_app, bob)
    html = login(bob).get(reverse("app_list", args=["acme"])).content.decode()
    assert "Manu ERP" in html and "Manu Online" in html and "status-pending" in html
    assert "<td>1</td>" in html


def create_manu(client, **overrides):
    data = {
        "name": "Books",
        "client_id": "cid-123",
        "redirect_uris": f"{callback_uri()}\nhttps://backup.example/cb",
        "account_ids": "11\n22\n33",
        "scopes": ["API_ALL"],
        "refresh_policy": "warm",
        "client_secret": "plain-secret-WXYZ",
        "secret_label": "first",
        **overrides,
    }
    return client.post(reverse("app_create", args=["acme"]) + "?provider=manu_online", data)


def test_create_picks_the_provider_first(alice, login):
    client = login(alice)
    picker = client.get(reverse("app_create", args=["acme"])).content.decode()
    assert 'name="provider"' in picker and "Manus" in picker
    form = client.get(reverse("app_create", args=["acme"]) + "?provider=manitou_group")
    html = form.content.decode()
    assert "subscription_key_primary" in html and "account_ids" not in html
    bogus = client.get(reverse("app_create", args=["acme"]) + "?provider=nope")
    assert bogus.status_code == 200 and "valid choice" in bogus.content.decode()


def test_secret_is_shown_once_then_masked(alice, login):
    client = login(alice)
    response = create_manu(client)
    app = PrivateApp.objects.get(name="Books")
    assert response.status_code == 302
    first = client.get(response["Location"]).content.decode()
    assert "plain-secret-WXYZ" in first
    assert "API_ALL grants broad access" in first
    again = client.get(response["Location"]).content.decode()
    assert "plain-secret-WXYZ" not in again
    assert "••••WXYZ" in again
    assert app.status == "pending"
    assert app.account_ids == ["11", "22", "33"]
    assert "callback-missing" not in again


def test_detail_warns_when_the_callback_url_is_not_registered(manu_app, alice, bob, login):
    html = login(alice).get(app_urls(manu_app)["detail"]).content.decode()
    assert callback_uri() in html
    assert "callback-missing" in html
    # the app's configuration is the admins' business (issue 13: pages shaped by role)
    assert "callback-missing" not in login(bob).get(app_urls(manu_app)["detail"]).content.decode()


def test_invalid_input_gets_one_error_per_rule_and_no_app(alice, login):
    response = create_manu(
        login(alice),
        redirect_uris="javascript:alert(1)\nhttps://*.example.com/cb\nhttps://a.example/#x",
        account_ids="1\n2\n3\n4",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "forbidden" in html and "wildcards" in html and "fragment" in html
    assert "At most 3 account ids" in html
    assert not PrivateApp.objects.filter(name="Books").exists()


def test_rotation_add_make_primary_revoke_old(manu_app, alice, login):
    client = login(alice)
    urls = app_urls(manu_app)
    old = manu_app.client_secrets.get()
    response = client.post(urls["secret_add"], {"value": "second-secret-NEW2", "label": "2"})
    assert response.status_code == 302
    assert "second-secret-NEW2" in client.get(urls["detail"]).content.decode()
    new = manu_app.client_secrets.get(label="2")
    assert not new.is_primary

    # Revoking the primary first would leave no secret in use: refused.
    client.post(urls["secret_revoke"])
    assert not ClientSecret.objects.get(pk=old.pk).revoked_at

    client.post(reverse("secret_make_primary", args=["acme", manu_app.pk, new.pk]))
    client.post(urls["secret_revoke"])
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.revoked_at and not old.is_primary and new.is_primary
    assert list(manu_app.active_secrets()) == [new]
    kinds = list(AuditEvent.objects.filter(app=manu_app).values_list("kind", "actor__username"))
    for kind in ("secret_added", "secret_primary", "secret_revoked"):
        assert (kind, "alice") in kinds
    messages = " ".join(AuditEvent.objects.values_list("message", flat=True))
    data = str(list(AuditEvent.objects.values_list("data", flat=True)))
    for plain in ("second-secret-NEW2", "first-secret-AAAA"):
        assert plain not in messages and plain not in data


def test_manu_online_allows_two_secrets(manu_app, alice, login):
    client = login(alice)
    urls = app_urls(manu_app)
    client.post(urls["secret_add"], {"value": "second-secret-2222"})
    response = client.post(urls["secret_add"], {"value": "third-secret-3333"})
    # At the limit, a new secret must name the one it replaces.
    assert "Replace a secret of" in response.content.decode()
    assert response.context["form"].errors["replaces"]
    assert manu_app.client_secrets.count() == 2


def test_at_the_limit_a_secret_is_replaced_in_one_step(acme, alice, login):
    app = factories.app(acme, "manhattan_active", name="WMS")
    old = services.secret_add(app=app, actor=alice, value="only-secret-AAAA-1111")
    client = login(alice)
    urls = app_urls(app)
    detail = client.get(urls["detail"]).content.decode()
    assert "Replace a secret" in detail and "Add a secret" not in detail
    page = client.get(urls["secret_add"]).content.decode()
    assert "Replace a secret of WMS" in page
    response = client.post(urls["secret_add"], {"value": "new-secret-BBBB-2222", "replaces": old.pk})
    assert response.status_code == 302
    old.refresh_from_db()
    new = app.client_secrets.get(revoked_at__isnull=True)
    assert old.revoked_at and not old.is_primary
    assert new.is_primary and new.value == "new-secret-BBBB-2222"
    messages = list(AuditEvent.objects.filter(app=app).values_list("kind", "message"))
    assert ("secret_revoked", f"Secret {old.masked} revoked: replaced by {new.masked}.") in messages
    # Shown once, like any new secret.
    assert "new-secret-BBBB-2222" in client.get(urls["detail"]).content.decode()


def test_a_secret_of_another_app_cannot_be_named_as_replaced(manu_app, manus_app, alice, login):
    client = login(alice)
    urls = app_urls(manu_app)
    client.post(urls["secret_add"], {"value": "second-secret-2222"})
    foreign = manus_app.client_secrets.get()
    response = client.post(urls["secret_add"], {"value": "third-secret-3333", "replaces": foreign.pk})
    assert response.status_code == 200 and response.context["form"].errors["replaces"]
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_disabling_asks_first_and_says_connections_pause(manu_app, alice, bob, login, connection_of):
    conn = connection_of(manu_app, bob)
    client = login(alice)
    urls = app_urls(manu_app)
    client.post(urls["status"], {"status": "enabled"})
    page = client.get(urls["detail"]).content.decode()
    assert 'data-confirm="Disable Manu ERP?' in page
    assert 'data-confirm="Revoke ' in page
    response = client.post(urls["status"], {"status": "disabled"}, follow=True)
    assert "1 live connection is paused" in response.content.decode()
    listing = client.get(reverse("connection_list", args=["acme"])).content.decode()
    assert 'data-testid="paused"' in listing
    detail = client.get(reverse("connection_detail", args=["acme", conn.pk])).content.decode()
    assert "Paused. The app Manu ERP is disabled" in detail
    assert 'data-testid="test"' not in detail
    paused = client.get(reverse("connection_list", args=["acme"]), {"status": "paused"})
    assert [c.pk for c in paused.context["table"].page.object_list] == [conn.pk]


def test_status_pending_enabled_disabled_and_back(manu_app, alice, login):
    client = login(alice)
    url = app_urls(manu_app)["status"]
    for target in ("enabled", "disabled", "enabled"):
        client.post(url, {"status": target})
        manu_app.refresh_from_db()
        assert manu_app.status == target
    client.post(url, {"status": "pending"})
    client.post(url, {"status": "bogus"})
    manu_app.refresh_from_db()
    assert manu_app.status == "enabled"
    assert AuditEvent.objects.filter(app=manu_app, kind="app_status").count() == 3


def test_non_manu_apps_start_enabled(manus_app):
    assert manus_app.status == "enabled"


def test_delete_is_refused_while_connections_exist(manu_app, alice, bob, login, connection_of):
    client = login(alice)
    conn = connection_of(manu_app, bob)
    page = client.get(app_urls(manu_app)["delete"]).content.decode()
    assert "cannot be deleted" in page
    response = client.post(app_urls(manu_app)["delete"], follow=True)
    assert "still has 1 connection" in response.content.decode()
    assert PrivateApp.objects.filter(pk=manu_app.pk).exists()
    conn.delete()
    response = client.post(app_urls(manu_app)["delete"])
    assert response.status_code == 302
    assert not PrivateApp.objects.filter(pk=manu_app.pk).exists()
    assert AuditEvent.objects.filter(kind="app_deleted", actor=alice).exists()


def edit_manus(client, app, **overrides):
    data = {
        "name": app.name,
        "client_id": app.client_id,
        "pkce_mode": app.pkce_mode,
        "client_auth": "json",
        "redirect_uris": "\n".join(app.redirect_uris),
        "scopes": app.scopes,
        "refresh_policy": "warm",
        **overrides,
    }
    return client.post(reverse("app_edit", args=["acme", app.pk]), data, follow=True)


def test_widening_manus_scopes_marks_connections_for_reauth(
    manus_app, alice, bob, login, connection_of
):
    active = connection_of(manus_app, bob)
    revoked = connection_of(manus_app, bob, status=Connection.Status.REVOKED)
    response = edit_manus(login(alice), manus_app, scopes=["create_task", "manage_all_tasks"])
    html = response.content.decode()
    assert "invalidates every token" in html
    assert "manage_all_tasks grants broad access" in html
    active.refresh_from_db()
    revoked.refresh_from_db()
    assert active.status == Connection.Status.NEEDS_REAUTH
    assert revoked.status == Connection.Status.REVOKED
    assert AuditEvent.objects.filter(connection=active, kind="reauth_needed").count() == 1
    assert AuditEvent.objects.filter(app=manus_app, kind="scopes_widened", actor=alice).exists()


def test_narrowing_scopes_keeps_connections(manus_app, alice, bob, login, connection_of):
    conn = connection_of(manus_app, bob)
    edit_manus(login(alice), manus_app, scopes=[])
    conn.refresh_from_db()
    assert conn.status == Connection.Status.ACTIVE


def test_post_only_urls_refuse_get(manu_app, alice, login):
    client = login(alice)
    assert client.get(app_urls(manu_app)["status"]).status_code == 405
    assert client.get(app_urls(manu_app)["secret_revoke"]).status_code == 405


@pytest.mark.parametrize(
    ("provider", "data"),
    [
        (
            "manus",
            {
                "pkce_mode": "pkce",
                "client_auth": "form",
                "redirect_uris": "com.example.app://oauth",
                "scopes": ["create_task", "use_connectors"],
                "connector_uids": "bbb0df76-aaaa",
                "refresh_policy": "on_demand",
            },
        ),
        (
            "generic",
            {
                "grant_type": "client_credentials",
                "pkce_mode": "secret",
                "client_auth": "basic",
                "scopes": "read write",
                "scope_separator": " ",
                "token_url": "https://id.example/token",
                "client_secret": "generic-secret-1",
                "refresh_policy": "warm",
            },
        ),
    ],
)
def test_an_admin_registers_each_kind_of_app(alice, login, provider, data):
    client = login(alice)
    url = reverse("app_create", args=["acme"]) + f"?provider={provider}"
    form = client.get(url).content.decode()
    assert "help" in form
    response = client.post(url, {"name": "X", "client_id": "cid", **data})
    assert response.status_code == 302, re.findall(r"errorlist.*?</ul>", response.content.decode())
    app = PrivateApp.objects.get(name="X")
    assert app.provider == provider and app.status == "enabled"
    assert AuditEvent.objects.filter(app=app, kind="app_created", actor=alice).exists()


def test_a_foreign_secret_is_a_404_whatever_the_method(manu_app, manus_app, alice, login):
    client = login(alice)
    other = manus_app.client_secrets.get()
    for name in ("secret_revoke", "secret_make_primary"):
        url = reverse(name, args=["acme", manu_app.pk, other.pk])
        assert client.get(url).status_code == 404, url
        assert client.post(url).status_code == 404, url


def test_paused_connections_are_counted_as_paused_on_the_dashboard_report_and_exports(
    manu_app, alice, bob, login, connection_of
):
    connection_of(manu_app, bob)
    PrivateApp.objects.filter(pk=manu_app.pk).update(status="disabled")
    client = login(alice)
    dashboard = client.get(reverse("dashboard", args=["acme"])).content.decode()
    assert "Paused (app disabled)" in dashboard and 'data-testid="stat-active"' not in dashboard
    report = client.get(reverse("expiry_report", args=["acme"]))
    assert 'data-testid="paused-count"' in report.content.decode()
    body = client.get(reverse("expiry_report", args=["acme"]), {"format": "json"}).json()
    assert body["summary"]["paused"] == 1 and body["connections"][0]["paused"] is True
