"""Verification as the catalogue says, and what is stored for each request."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from connections import tasks
from connections.models import AuditEvent, Connection, InboundDelivery
from connections.webhooks_inbound import inbound_path
from tests import factories
from tests.support.webhooks import PRIMARY, SECOND

pytestmark = pytest.mark.django_db
VERIFIED, REJECTED = InboundDelivery.Result.VERIFIED, InboundDelivery.Result.REJECTED


def only_delivery() -> InboundDelivery:
    (delivery,) = InboundDelivery.objects.all()
    return delivery


def assert_rejected(response, reason: str) -> InboundDelivery:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == reason and body["message"]
    delivery = only_delivery()
    assert (delivery.result, delivery.reason) == (REJECTED, reason)
    assert delivery.body is None and delivery.message
    return delivery


def test_a_webhook_signed_with_the_primary_secret_is_stored(deliver, manu_app):
    response = deliver(manu_app, {"event": "order.activated"}, delivery_id="evt-1")
    assert response.status_code == 200
    assert response.json() == {"received": True, "malformed": False}
    d = only_delivery()
    assert (d.result, d.app, d.tenant, d.delivery_id) == (VERIFIED, manu_app, manu_app.tenant, "evt-1")
    assert bytes(d.body) == b'{"event": "order.activated"}' and d.body_size == len(bytes(d.body))
    assert d.headers["X-Manu-Webhook-Id"] == "evt-1" and "X-Manu-Timestamp" in d.headers
    assert "X-Manu-Signature" not in d.headers  # kept: what matters, not the signature


def test_a_wrong_secret_is_rejected_without_keeping_the_body(deliver, manu_app):
    response = deliver(manu_app, {"event": "secret stuff"}, secret="not-the-secret-at-all")
    d = assert_rejected(response, "bad_signature")
    assert d.body_size > 0 and d.account_id == ""


def test_manu_onlines_second_secret_does_not_verify(deliver, manu_app):
    """Seed 000: webhooks are verified with the primary secret only."""
    assert_rejected(deliver(manu_app, {"event": "x"}, secret=SECOND), "bad_signature")


def test_after_make_primary_the_other_secret_verifies(deliver, manu_app, alice):
    from connections import services

    second = manu_app.client_secrets.get(is_primary=False)
    services.secret_make_primary(secret=second, actor=alice)
    assert deliver(manu_app, {"n": 1}, secret=SECOND).status_code == 200
    assert deliver(manu_app, {"n": 2}, secret=PRIMARY).status_code == 401


def test_manus_accepts_any_active_secret(deliver, manus_app):
    """The portal's assumption for Manus (its Webhook Security guide is not at hand)."""
    assert deliver(manus_app, {"n": 1}, secret=PRIMARY).status_code == 200
    assert deliver(manus_app, {"n": 2}, secret=SECOND).status_code == 200
    assert deliver(manus_app, {"n": 3}, secret="revoked-or-never-had").status_code == 401


def test_a_revoked_secret_does_not_verify(deliver, manus_app, alice):
    from connections import services

    second = manus_app.client_secrets.get(is_primary=False)
    services.secret_revoke(secret=second, actor=alice)
    assert_rejected(deliver(manus_app, {"n": 1}, secret=SECOND), "bad_signature")


def test_a_stale_timestamp_is_rejected(deliver, manu_app):
    old = int(time.time()) - manu_app.catalogue.webhook_tolerance_seconds - 60
    assert_rejected(deliver(manu_app, {"event": "x"}, timestamp=old), "stale_timestamp")


def test_a_timestamp_from_the_future_is_rejected_too(deliver, manu_app):
    ahead = int(time.time()) + manu_app.catalogue.webhook_tolerance_seconds + 60
    assert_rejected(deliver(manu_app, {"event": "x"}, timestamp=ahead), "stale_timestamp")


def test_a_timestamp_changed_after_signing_is_rejected(deliver, manu_app):
    headers = {"X-Manu-Timestamp": str(int(time.time()) - 1)}
    response = deliver(manu_app, {"e": 1}, timestamp=int(time.time()) - 2, headers=headers)
    assert_rejected(response, "bad_signature")


def test_a_replayed_delivery_id_is_recorded_not_stored_again(deliver, manu_app):
    assert deliver(manu_app, {"event": "x"}, delivery_id="evt-42").status_code == 200
    response = deliver(manu_app, {"event": "x"}, delivery_id="evt-42")
    # Signed correctly: the provider retrying. It hears 200 and stops; nothing is kept twice.
    assert response.status_code == 200 and response.json()["duplicate"] is True
    assert InboundDelivery.objects.filter(result=VERIFIED).count() == 1
    replay = InboundDelivery.objects.get(result=REJECTED)
    assert replay.reason == "replayed" and replay.delivery_id == "evt-42" and replay.body is None


def test_the_same_delivery_id_at_another_app_is_not_a_replay(deliver, manu_app, manus_app):
    assert deliver(manu_app, {"e": 1}, delivery_id="evt-7").status_code == 200
    assert deliver(manus_app, {"e": 1}, delivery_id="evt-7").status_code == 200


def test_a_tampered_body_is_rejected(deliver, manu_app):
    response = deliver(manu_app, {"amount": 10}, body=b'{"amount": 10000}')
    assert_rejected(response, "bad_signature")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("X-Manu-Signature", "missing_signature"),
        ("X-Manu-Timestamp", "missing_timestamp"),
        ("X-Manu-Webhook-Id", "missing_delivery_id"),
    ],
)
def test_a_missing_header_is_rejected(deliver, manu_app, header, reason):
    response = deliver(manu_app, {"e": 1}, headers={header: ""})
    assert_rejected(response, reason)


def test_a_body_over_the_limit_is_refused_with_413(deliver, manu_app, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    response = deliver(manu_app, {"pad": "x" * 200})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large" and "100 bytes" in response.json()["message"]
    d = only_delivery()
    assert (d.result, d.reason, d.body) == (REJECTED, "too_large", None)
    assert deliver(manu_app, {"pad": "x" * 50}).status_code == 200  # under it: fine


def test_malformed_json_is_stored_as_received_and_flagged(deliver, manu_app):
    raw = b'{"event": "half\xff a document'
    response = deliver(manu_app, raw)
    assert response.status_code == 200 and response.json()["malformed"] is True
    d = only_delivery()
    assert d.result == VERIFIED and d.malformed and bytes(d.body) == raw
    assert d.connection is None


def test_a_payload_naming_the_account_is_attributed_to_its_connection(deliver, manu_app, bob):
    conn = factories.connection(manu_app, user=bob, account_id="1001")
    deliver(manu_app, {"account_id": "1001", "event": "partner.saved"})
    d = only_delivery()
    assert d.connection == conn and d.account_id == "1001" and d.attributed


def test_a_numeric_account_id_is_matched_as_text(deliver, manu_app, bob):
    conn = factories.connection(manu_app, user=bob, account_id="1001")
    deliver(manu_app, {"account_id": 1001})
    assert only_delivery().connection == conn


@pytest.mark.parametrize(
    "payload",
    [{"event": "no account"}, {"account_id": "9999"}, ["account_id", "1001"], {"account_id": None}],
)
def test_a_payload_without_a_matching_account_is_unattributed(deliver, manu_app, bob, payload):
    factories.connection(manu_app, user=bob, account_id="1001")
    assert deliver(manu_app, payload).status_code == 200
    d = only_delivery()
    assert d.result == VERIFIED and d.connection is None and not d.attributed


def test_a_revoked_connection_or_another_apps_is_not_attributed(deliver, manu_app, manus_app, bob):
    factories.connection(manu_app, user=bob, account_id="1001", status=Connection.Status.REVOKED)
    factories.connection(manus_app, user=bob, account_id="1001")
    deliver(manu_app, {"account_id": "1001"})
    assert only_delivery().connection is None


def test_only_post_is_allowed_and_answered_in_json(client, manu_app):
    response = client.get(inbound_path(manu_app))
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert not InboundDelivery.objects.exists()


def test_an_unknown_url_is_a_json_404_and_records_nothing(client, manu_app):
    response = client.post("/webhooks/in/not-a-token/", data=b"{}", content_type="application/json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not InboundDelivery.objects.exists()


def test_every_app_gets_its_own_url_and_only_its_hash_is_in_clear(manu_app, manus_app):
    from django.db import connection as db

    assert manu_app.webhook_token != manus_app.webhook_token
    assert len(manu_app.webhook_token) >= 43
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT webhook_token FROM connections_privateapp WHERE id = %s", [manu_app.pk]
        )
        (stored,) = cursor.fetchone()
    assert manu_app.webhook_token not in stored  # encrypted at rest


def test_a_generic_app_verifies_with_its_own_header_and_encoding(client, acme):
    from sandbox.webhooks import signature

    app = factories.app(
        acme,
        "generic",
        webhook_signature_header="X-Hub-Signature",
        webhook_signature_encoding="base64",
    )
    factories_secret(app, PRIMARY)
    body = b'{"hello": "world"}'
    ok = signature(PRIMARY, body, encoding="base64")
    response = client.post(
        inbound_path(app), data=body, content_type="application/json",
        headers={"X-Hub-Signature": ok},
    )
    assert response.status_code == 200
    hexed = signature(PRIMARY, body, encoding="hex")
    response = client.post(
        inbound_path(app), data=body, content_type="application/json",
        headers={"X-Hub-Signature": hexed},
    )
    assert response.status_code == 401


def test_a_generic_app_without_a_signature_header_rejects_everything(client, acme):
    app = factories.app(acme, "generic")
    factories_secret(app, PRIMARY)
    response = client.post(inbound_path(app), data=b"{}", content_type="application/json")
    assert response.status_code == 401 and response.json()["error"] == "not_configured"


def factories_secret(app, value: str) -> None:
    from connections.models import ClientSecret

    ClientSecret.objects.create(app=app, value=value, last_four=value[-4:], is_primary=True)


def test_the_generic_form_offers_the_webhook_fields_and_others_do_not():
    from connections.app_fields import fields_for
    from connections.providers import PROVIDERS

    names = {"webhook_signature_header", "webhook_signature_encoding"}
    for key, provider in PROVIDERS.items():
        shown = names & set(fields_for(provider))
        assert shown == (names if provider.generic else set()), key


def test_old_deliveries_are_pruned_after_the_retention(deliver, manu_app, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    deliver(manu_app, {"e": "new"})
    deliver(manu_app, {"e": "old"}, secret="wrong-secret-xxxxxxxx")
    InboundDelivery.objects.filter(result=REJECTED).update(
        received_at=timezone.now() - timedelta(days=31)
    )
    assert tasks.prune_inbound_webhooks() == 1
    assert only_delivery().result == VERIFIED
    assert "prune-inbound-webhooks" in settings.CELERY_BEAT_SCHEDULE


def test_regenerating_the_url_cuts_off_the_old_one(deliver, login, alice, manu_app):
    from django.urls import reverse

    old_path = inbound_path(manu_app)
    url = reverse("webhook_regenerate", args=["acme", manu_app.pk])
    response = login(alice).post(url)
    assert response.status_code == 302
    manu_app.refresh_from_db()
    assert inbound_path(manu_app) != old_path
    assert login(alice).post(old_path, data=b"{}", content_type="application/json").status_code == 404
    assert deliver(manu_app, {"e": 1}).status_code == 200
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.WEBHOOK_URL_REGENERATED)
    assert event.actor == alice and event.app == manu_app
    assert manu_app.webhook_token not in event.message


def test_an_admin_sets_a_generic_apps_webhook_signature_in_the_form(login, alice):
    from django.urls import reverse

    from connections.models import PrivateApp

    url = reverse("app_create", args=["acme"]) + "?provider=generic"
    data = {
        "name": "Hooks",
        "client_id": "cid",
        "grant_type": "client_credentials",
        "client_auth": "basic",
        "token_url": "https://id.example/token",
        "client_secret": "generic-secret-1234",
        "webhook_signature_header": "X-Signature",
        "webhook_signature_encoding": "base64",
    }
    bad = login(alice).post(url, {**data, "webhook_signature_header": "X Signature: no"})
    assert bad.status_code == 200 and "Not a valid HTTP header name." in bad.content.decode()
    assert login(alice).post(url, data).status_code == 302
    app = PrivateApp.objects.get(name="Hooks")
    assert (app.webhook_signature_header, app.webhook_signature_encoding) == ("X-Signature", "base64")


def test_the_url_token_stays_out_of_the_logs(deliver, manu_app, caplog):
    import io
    import logging
    from datetime import timedelta as td
    from types import SimpleNamespace

    from gunicorn.config import Config

    from portal import gunicorn_conf
    from portal.log_filters import without_query

    token = manu_app.webhook_token
    with caplog.at_level(logging.INFO):
        deliver(manu_app, {"e": 1}, secret="wrong-secret-xxxxxxxx")
    assert "bad_signature" in caplog.text and token not in caplog.text
    line = f'"POST /webhooks/in/{token}/ HTTP/1.1" 401 80'
    assert without_query(line) == '"POST /webhooks/in/…/ HTTP/1.1" 401 80'
    cfg = Config()
    cfg.set("accesslog", gunicorn_conf.accesslog)
    cfg.set("access_log_format", gunicorn_conf.access_log_format)
    logger = gunicorn_conf.logger_class(cfg)
    out = io.StringIO()
    logger.access_log.handlers = [logging.StreamHandler(out)]
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/webhooks/in/{token}/",
        "PATH_INFO": f"/webhooks/in/{token}/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
    }
    response = SimpleNamespace(status="401 Unauthorized", sent=0, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), environ, td(milliseconds=3))
    assert '"POST /webhooks/in/…/ HTTP/1.1" 401' in out.getvalue()
    assert token not in out.getvalue()


def test_a_disabled_app_refuses_webhooks_with_409_and_records_why(deliver, manu_app):
    from connections.models import PrivateApp

    PrivateApp.objects.filter(pk=manu_app.pk).update(status="disabled")
    response = deliver(manu_app, {"account_id": "1001"})
    assert response.status_code == 409 and response.json()["error"] == "app_disabled"
    assert only_delivery().reason == "app_disabled"


def test_the_delivery_id_is_signed_so_a_replay_under_a_new_id_is_refused(deliver, manu_app):
    assert deliver(manu_app, {"a": 1}, delivery_id="evt-1").status_code == 200
    replay = deliver(manu_app, {"a": 1}, delivery_id="evt-1", headers={"X-Manu-Webhook-Id": "evt-2"})
    assert replay.status_code == 401 and replay.json()["error"] == "bad_signature"
