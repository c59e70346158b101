"""Signing secrets: shown once, and rotated with an overlap in which every delivery carries
both signatures, each verified by the standardwebhooks package as a tenant would."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connections import webhook_listener, webhooks_outbound
from connections.models import OutboundDelivery, SigningSecret


def sent_once(app, deliver, listener):
    deliver(app, {"account_id": "x", "n": listener.count()})
    relay = OutboundDelivery.objects.filter(app=app).order_by("-id").first()
    assert webhooks_outbound.attempt(relay.pk) == "delivered"
    heard = listener.received[-1]
    return heard.headers, heard.body


def verifies(secret, headers, body) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_the_first_secret_is_made_when_a_listener_is_set_and_only_then(manu_app, alice):
    fields = {"listener_sync": False, "listener_events": [], "lapse_warning_days": 7}
    assert webhook_listener.configure(app=manu_app, actor=alice, listener_url="", **fields) is None
    url = "https://hooks.example/in"
    first = webhook_listener.configure(app=manu_app, actor=alice, listener_url=url, **fields)
    assert first.startswith("whsec_")
    again = webhook_listener.configure(app=manu_app, actor=alice, listener_url=url, **fields)
    assert again is None  # never shown again
    stored = SigningSecret.objects.get(app=manu_app)
    assert stored.last_four == first[-4:]
    # Encrypted at rest: the column does not hold the value.
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM connections_signingsecret WHERE id = %s", [stored.pk])
        assert first not in str(cursor.fetchone()[0])


@pytest.mark.parametrize("which", ["old", "new"])
def test_during_the_overlap_both_signatures_verify(
    manu_app, listener, listen, deliver, alice, which
):
    app = listen(manu_app, listener)
    [old] = listener.secrets
    new = webhook_listener.rotate_secret(app=app, actor=alice)
    headers, body = sent_once(app, deliver, listener)
    assert len(headers["webhook-signature"].split(" ")) == 2
    # A listener that has switched, and one that has not yet, both accept it.
    assert verifies(old if which == "old" else new, headers, body)


def test_after_the_overlap_only_the_new_secret_signs(manu_app, listener, listen, deliver, alice):
    app = listen(manu_app, listener)
    [old] = listener.secrets
    new = webhook_listener.rotate_secret(app=app, actor=alice)
    listener.secrets.append(new)  # the listener would refuse what it cannot verify
    SigningSecret.objects.filter(app=app, expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    headers, body = sent_once(app, deliver, listener)
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, headers, body) and not verifies(old, headers, body)


def test_a_tampered_delivery_does_not_verify(manu_app, listener, listen, deliver):
    app = listen(manu_app, listener)
    headers, body = sent_once(app, deliver, listener)
    assert not verifies(listener.secrets[0], headers, body.replace(b'"n"', b'"m"'))
    other = webhook_listener.new_secret_value()
    assert not verifies(other, headers, body)
