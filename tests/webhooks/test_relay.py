"""A verified provider webhook is relayed to the app's listener, signed the Standard Webhooks
way, retried on 5xx and 429 (after its Retry-After), given up on, redelivered, and in
synchronous mode answered with the listener's status."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from connections import webhooks_outbound
from connections.models import OutboundDelivery
from connections.views.webhooks import _passed_on
from connections.webhook_events import EventType
from sandbox.listener import Reply
from tests import factories
from tests.support.waiting import wait_for

Status = OutboundDelivery.Status


@pytest.fixture(autouse=True)
def quick_retries(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_RETRY_MAX_SECONDS = 5


def send_until_settled(pk: int) -> OutboundDelivery:
    """What the worker does, in this process: attempt whenever the delivery is due."""

    def settled():
        webhooks_outbound.attempt(pk)
        row = OutboundDelivery.objects.get(pk=pk)
        return row if row.status in (Status.DELIVERED, Status.FAILED) else None

    return wait_for(settled, timeout=20, every=0.05, message="the delivery never settled")


def test_a_verified_webhook_reaches_the_listener_signed_with_its_connection(
    manu_app, listener, listen, deliver, alice
):
    app = listen(manu_app, listener)
    conn = factories.connection(app, user=alice, account_id="1001")
    assert deliver(app, {"account_id": "1001", "event": "invoice.paid"}).status_code == 200
    [relay] = OutboundDelivery.objects.filter(app=app)
    assert relay.event_type == EventType.RECEIVED and relay.connection == conn
    assert send_until_settled(relay.pk).status == Status.DELIVERED
    [heard] = listener.received
    assert heard.verified, heard.error  # standardwebhooks' own verifier accepted it
    assert heard.headers["webhook-id"] == relay.message_id
    data = heard.document["data"]
    assert data["connection"]["id"] == conn.pk and data["attributed"] is True
    assert data["payload"] == {"account_id": "1001", "event": "invoice.paid"}


def test_a_listener_that_fails_twice_is_retried_until_it_takes_the_delivery(
    manu_app, listener, listen, deliver
):
    listener.replies = [Reply(503), Reply(429, retry_after="1"), Reply(200)]
    app = listen(manu_app, listener)
    deliver(app, {"account_id": "nobody"})
    relay = OutboundDelivery.objects.get(app=app)

    assert webhooks_outbound.attempt(relay.pk) == Status.PENDING  # the 503
    assert webhooks_outbound.attempt(relay.pk) is None  # not due yet: backoff
    wait_for(lambda: webhooks_outbound.attempt(relay.pk), every=0.05)  # the 429
    relay.refresh_from_db()
    last_try = relay.tries.last()
    assert relay.last_status_code == 429
    # Retry-After: 1 is honoured: never sooner than one second after the 429.
    assert relay.next_attempt_at >= last_try.started_at + timedelta(seconds=1)

    done = send_until_settled(relay.pk)
    assert done.status == Status.DELIVERED and done.attempts == 3
    assert [t.status_code for t in done.tries.all()] == [503, 429, 200]
    ids = {r.headers["webhook-id"] for r in listener.received}
    assert ids == {relay.message_id}  # the same idempotency id on every attempt
    assert all(r.verified for r in listener.received)  # each attempt signed afresh


def test_a_listener_that_keeps_failing_ends_failed_and_can_be_redelivered(
    manu_app, listener, listen, deliver, alice, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    listener.replies = [Reply(500), Reply(502), Reply(504)]
    app = listen(manu_app, listener)
    deliver(app, {"account_id": "x"})
    relay = OutboundDelivery.objects.get(app=app)
    failed = send_until_settled(relay.pk)
    assert failed.status == Status.FAILED and failed.attempts == 3
    assert "gave up after 3 attempts" in failed.last_error

    assert webhooks_outbound.redeliver(failed, actor=alice)
    again = send_until_settled(relay.pk)
    assert again.status == Status.DELIVERED and again.tries.count() == 4


def test_a_refusal_other_than_429_is_final(manu_app, listener, listen, deliver):
    listener.replies = [Reply(400)]
    app = listen(manu_app, listener)
    deliver(app, {"account_id": "x"})
    relay = OutboundDelivery.objects.get(app=app)
    done = send_until_settled(relay.pk)
    assert done.status == Status.FAILED and done.attempts == 1
    assert done.last_error == "the listener answered 400"


def test_a_listener_on_a_private_address_is_never_sent_to(manu_app, listen, deliver, listener):
    app = listen(manu_app, listener)
    type(app).objects.filter(pk=app.pk).update(listener_url="https://10.0.0.7/hook")
    deliver(app, {"account_id": "x"})
    done = send_until_settled(OutboundDelivery.objects.get(app=app).pk)
    assert done.status == Status.FAILED and done.attempts == 1
    assert "not sent" in done.last_error and not listener.received


def test_synchronous_mode_answers_the_provider_with_the_listeners_status(
    manu_app, listener, listen, deliver
):
    listener.replies = [Reply(503), Reply(202)]
    app = listen(manu_app, listener, listener_sync=True)
    first = deliver(app, {"account_id": "x", "n": 1})
    assert first.status_code == 503
    assert first.json()["listener"]["status"] == 503
    relay = OutboundDelivery.objects.get(app=app)
    assert relay.status == Status.PENDING  # the portal still retries it later
    assert relay.tries.get().synchronous

    second = deliver(app, {"account_id": "x", "n": 2})
    assert second.status_code == 200 and second.json()["listener"]["status"] == 202
    assert len(listener.received) == 2


def test_a_lapsed_claim_is_put_back_by_the_sweep(manu_app, listener, listen, deliver):
    app = listen(manu_app, listener)
    deliver(app, {"account_id": "x"})
    relay = OutboundDelivery.objects.get(app=app)
    assert webhooks_outbound.claim(relay.pk) is not None  # a worker took it, then died
    OutboundDelivery.objects.filter(pk=relay.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert webhooks_outbound.release_lapsed() == 1
    assert send_until_settled(relay.pk).status == Status.DELIVERED


def test_a_delivery_that_fails_for_good_alerts_admins_once_a_day(
    manu_app,
    listener,
    listen,
    deliver,
    alice,
    tasks_inline,
    settings,
    django_capture_on_commit_callbacks,
):
    alice.email = "alice@acme.test"
    alice.save()
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    listener.default = Reply(500)
    app = listen(manu_app, listener)
    for n in range(2):
        deliver(app, {"account_id": "x", "n": n})
    with django_capture_on_commit_callbacks(execute=True):
        for relay in OutboundDelivery.objects.filter(app=app):
            assert send_until_settled(relay.pk).status == Status.FAILED
    [alert] = [m for m in mail.outbox if "failing" in m.subject]
    assert alert.to == ["alice@acme.test"] and "?status=failed" in alert.body


def test_in_synchronous_mode_the_providers_retry_tries_the_listener_again(
    manu_app, listener, listen, deliver
):
    listener.replies = [Reply(503), Reply(200)]
    app = listen(manu_app, listener, listener_sync=True)
    first = deliver(app, {"account_id": "x"}, delivery_id="evt-same")
    assert first.status_code == 503
    again = deliver(app, {"account_id": "x"}, delivery_id="evt-same")  # the provider retries
    assert again.status_code == 200 and again.json()["duplicate"] is True
    relay = OutboundDelivery.objects.get(app=app)  # relayed once, attempted twice
    assert relay.status == Status.DELIVERED and relay.attempts == 2
    assert {r.headers["webhook-id"] for r in listener.received} == {relay.message_id}


def test_a_freed_slot_is_passed_on_to_the_tenants_next_delivery(
    manu_app, listener, listen, deliver, settings, monkeypatch
):
    settings.WEBHOOK_TENANT_IN_FLIGHT = 1
    app = listen(manu_app, listener)
    for n in range(3):
        deliver(app, {"account_id": "x", "n": n})
    first, *rest = OutboundDelivery.objects.filter(app=app).order_by("id")
    queued = []
    monkeypatch.setattr(webhooks_outbound, "queue_send", queued.append)
    assert webhooks_outbound.drain(first.pk, limit=2) == 2  # the first, then the next
    assert queued == [rest[-1].pk]  # the one left over gets a task of its own
    assert webhooks_outbound.drain(rest[-1].pk, limit=2) == 1 and queued == [rest[-1].pk]


def test_an_attempt_whose_claim_lapsed_records_nothing_over_the_next_claim(
    manu_app, listener, listen, deliver
):
    app = listen(manu_app, listener)
    deliver(app, {"account_id": "x"})
    relay = OutboundDelivery.objects.get(app=app)
    slow = webhooks_outbound.claim(relay.pk)  # worker A, stalled past its lease
    OutboundDelivery.objects.filter(pk=relay.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    webhooks_outbound.release_lapsed()
    webhooks_outbound.claim(relay.pk)  # worker B has it now
    webhooks_outbound.settle(slow, webhooks_outbound.Answer(code=200))
    relay.refresh_from_db()
    assert relay.status == Status.SENDING and not relay.tries.exists()  # B's claim stands


@pytest.mark.parametrize(
    ("code", "answered"), [(204, 200), (200, 200), (404, 404), (503, 503), (999, 502), (302, 502)]
)
def test_the_provider_hears_a_status_it_can_be_sent(code, answered):
    assert _passed_on(webhooks_outbound.Answer(code=code)) == answered
