"""The app page's inbound URL, the deliveries pages, and tenant isolation of each."""

import pytest
from django.urls import reverse

from connections.models import InboundDelivery
from connections.webhooks_inbound import inbound_url
from tests import factories
from tests.support.webhooks import PRIMARY

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(deliver, manu_app, bob):
    """One verified (attributed, with a payload) and one rejected delivery of manu_app."""
    factories.connection(manu_app, user=bob, account_id="1001")
    deliver(manu_app, {"account_id": "1001", "note": "payload-marker"})
    deliver(manu_app, {"note": "forged-marker"}, secret="wrong-secret-xxxxxxxx")
    return (
        InboundDelivery.objects.get(result="verified"),
        InboundDelivery.objects.get(result="rejected"),
    )


def test_the_app_page_shows_admins_the_url_with_a_copy_button(login, alice, manu_app):
    page = login(alice).get(reverse("app_detail", args=["acme", manu_app.pk])).content.decode()
    url = inbound_url(manu_app)
    assert manu_app.webhook_token in url
    assert f'<code id="webhook-url">{url}</code>' in page
    assert 'data-copy="webhook-url"' in page
    assert reverse("webhook_regenerate", args=["acme", manu_app.pk]) in page
    assert "data-confirm=\"Regenerate" in page
    assert "X-Manu-Signature" in page and "portal&#x27;s assumption" in page


def test_members_do_not_see_the_url(login, bob, manu_app):
    page = login(bob).get(reverse("app_detail", args=["acme", manu_app.pk])).content.decode()
    assert manu_app.webhook_token not in page


def test_the_url_is_not_shown_for_a_provider_without_webhooks(login, alice, acme):
    app = factories.app(acme, "manitou_group")
    page = login(alice).get(reverse("app_detail", args=["acme", app.pk])).content.decode()
    assert 'id="webhook-url"' not in page


def test_the_tenant_page_lists_deliveries_with_badges_and_filters(login, alice, delivered):
    ok, bad = delivered
    page = login(alice).get(reverse("webhook_list", args=["acme"])).content.decode()
    assert page.count('data-testid="delivery-row"') == 2
    assert "Verified" in page and "Rejected" in page and "bad_signature" in page
    assert "payload-marker" not in page  # payloads only on a delivery's own page
    only_rejected = login(alice).get(reverse("webhook_list", args=["acme"]), {"result": "rejected"})
    assert only_rejected.content.decode().count('data-testid="delivery-row"') == 1
    by_app = login(alice).get(reverse("webhook_list", args=["acme"]), {"app": ok.app_id})
    assert by_app.content.decode().count('data-testid="delivery-row"') == 2


def test_the_app_page_of_deliveries_lists_only_that_apps(login, alice, delivered, deliver, manus_app):
    deliver(manus_app, {"e": "manus"})
    ok, _ = delivered
    page = login(alice).get(reverse("app_webhook_list", args=["acme", ok.app_id])).content.decode()
    assert page.count('data-testid="delivery-row"') == 2


def test_the_payload_is_shown_to_admins_only(login, alice, olive, delivered):
    ok, bad = delivered
    url = reverse("webhook_detail", args=["acme", ok.pk])
    assert "payload-marker" in login(alice).get(url).content.decode()
    ops_page = login(olive).get(url).content.decode()
    assert "payload-marker" not in ops_page and 'data-testid="payload-hidden"' in ops_page
    rejected = login(alice).get(reverse("webhook_detail", args=["acme", bad.pk])).content.decode()
    assert "forged-marker" not in rejected and "bad_signature" in rejected


def test_members_may_not_read_the_deliveries(login, bob, delivered):
    ok, _ = delivered
    assert login(bob).get(reverse("webhook_list", args=["acme"])).status_code == 403
    assert login(bob).get(reverse("webhook_detail", args=["acme", ok.pk])).status_code == 403


def test_another_tenants_pages_and_objects_are_404(login, carol, globex, delivered, manu_app):
    ok, _ = delivered
    client = login(carol)
    # Acme's URLs: not her tenant.
    for url in (
        reverse("webhook_list", args=["acme"]),
        reverse("webhook_detail", args=["acme", ok.pk]),
        reverse("app_webhook_list", args=["acme", manu_app.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("webhook_regenerate", args=["acme", manu_app.pk])).status_code == 404
    # Acme's objects under her own tenant's URLs.
    for url in (
        reverse("webhook_detail", args=["globex", ok.pk]),
        reverse("app_webhook_list", args=["globex", manu_app.pk]),
    ):
        assert client.get(url).status_code == 404, url
    regenerate = reverse("webhook_regenerate", args=["globex", manu_app.pk])
    assert client.post(regenerate).status_code == 404
    token = manu_app.webhook_token
    manu_app.refresh_from_db()
    assert manu_app.webhook_token == token
    own = client.get(reverse("webhook_list", args=["globex"])).content.decode()
    assert 'data-testid="delivery-row"' not in own


def test_regenerate_is_post_only_and_for_admins(login, alice, bob, manu_app):
    url = reverse("webhook_regenerate", args=["acme", manu_app.pk])
    assert login(alice).get(url).status_code == 405
    assert login(bob).post(url).status_code == 403


def test_pages_go_back_in_time_by_keyset(login, alice, manu_app):
    for n in range(55):
        InboundDelivery.objects.create(
            tenant=manu_app.tenant, app=manu_app, result="rejected", reason=f"r{n}"
        )
    client = login(alice)
    first = client.get(reverse("webhook_list", args=["acme"]))
    assert first.content.decode().count('data-testid="delivery-row"') == 50
    older = first.context["older"]
    assert older
    second = client.get(reverse("webhook_list", args=["acme"]) + older)
    assert second.content.decode().count('data-testid="delivery-row"') == 5
    assert not second.context["older"]


def test_nonsense_filters_are_a_page_not_a_crash(login, alice, manu_app):
    url = reverse("webhook_list", args=["acme"])
    for query in ({"result": "x"}, {"app": "abc"}, {"before": "-1"}, {"before": str(2**70)}):
        assert login(alice).get(url, query).status_code == 200


def test_the_secret_is_never_on_the_pages(login, alice, delivered, manu_app):
    ok, bad = delivered
    client = login(alice)
    for url in (
        reverse("app_detail", args=["acme", manu_app.pk]),
        reverse("webhook_list", args=["acme"]),
        reverse("webhook_detail", args=["acme", ok.pk]),
        reverse("webhook_detail", args=["acme", bad.pk]),
    ):
        assert PRIMARY not in client.get(url).content.decode()


def test_the_app_page_says_how_the_last_request_went(login, alice, deliver, manu_app):
    url = reverse("app_detail", args=["acme", manu_app.pk])
    assert "Nothing received yet." in login(alice).get(url).content.decode()
    deliver(manu_app, {"e": 1}, secret="wrong-secret-xxxxxxxx")
    page = login(alice).get(url).content.decode()
    assert "Rejected" in page and "bad_signature" in page


def test_the_django_admin_lists_deliveries_without_their_payload(client, delivered):
    from django.contrib.auth import get_user_model

    ok, _ = delivered
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "x" * 20)
    client.force_login(staff)
    page = client.get(reverse("admin:connections_inbounddelivery_change", args=[ok.pk]))
    assert page.status_code == 200 and "payload-marker" not in page.content.decode()
