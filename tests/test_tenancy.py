from django.urls import reverse


def test_anonymous_users_are_sent_to_login(client, acme):
    response = client.get(reverse("dashboard", args=["acme"]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_member_sees_their_tenant_dashboard(login, bob):
    response = login(bob).get(reverse("dashboard", args=["acme"]))
    assert response.status_code == 200
    assert b"Acme" in response.content


def test_another_tenants_dashboard_is_a_404(login, bob, carol):
    assert login(bob).get(reverse("dashboard", args=["globex"])).status_code == 404


def test_a_missing_tenant_is_the_same_404(login, bob):
    assert login(bob).get(reverse("dashboard", args=["nope"])).status_code == 404


def test_home_goes_straight_to_the_only_tenant(login, bob):
    response = login(bob).get(reverse("home"))
    assert response.url == reverse("dashboard", args=["acme"])


def test_home_offers_a_switcher_for_several_tenants(login, bob, globex):
    from portal.models import Membership

    Membership.objects.create(user=bob, tenant=globex, role="member")
    response = login(bob).get(reverse("home"))
    assert response.status_code == 200
    assert b"/t/acme/" in response.content and b"/t/globex/" in response.content


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content
