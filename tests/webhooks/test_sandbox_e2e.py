"""End to end: the sandbox provider signs a webhook and posts it over loopback HTTP to the
portal's inbound URL on the live server, as Manu Online would."""

import pytest
from django.core.management import call_command

from connections.models import InboundDelivery
from connections.webhooks_inbound import inbound_url
from sandbox.webhooks import send_webhook
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_manu_app(portal_url, acme):
    return factories.sandbox_app(acme, "manu_online", portal_url, account_ids=["1001"])


def test_the_sandbox_signs_and_the_portal_stores_it_verified(live_manu_app, portal_url, bob):
    conn = factories.connection(live_manu_app, user=bob, account_id="1001")
    url = inbound_url(live_manu_app)
    assert url.startswith(portal_url + "/webhooks/in/")
    response = send_webhook(
        "manu_online", live_manu_app.client_id, url, {"account_id": "1001", "event": "order"}
    )
    assert response.status_code == 200, response.text
    (d,) = InboundDelivery.objects.all()
    assert d.result == InboundDelivery.Result.VERIFIED
    assert d.connection_id == conn.pk and d.delivery_id.startswith("evt_")
    assert b'"event": "order"' in bytes(d.body)


def test_the_sandbox_signing_with_a_wrong_secret_is_rejected_over_http(live_manu_app):
    response = send_webhook(
        "manu_online",
        live_manu_app.client_id,
        inbound_url(live_manu_app),
        {"e": 1},
        secret="a-secret-manu-never-issued",
    )
    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    (d,) = InboundDelivery.objects.all()
    assert d.result == InboundDelivery.Result.REJECTED and d.body is None


def test_the_demo_command_sends_one_to_an_apps_url(live_manu_app, capsys):
    call_command("sandbox_webhook", app=live_manu_app.pk, account_id="1001")
    assert capsys.readouterr().out.startswith("200 ")
    assert InboundDelivery.objects.get().result == InboundDelivery.Result.VERIFIED
