"""One tenant's slow listener never delays another tenant's deliveries: a real webhook worker
(a thread pool, as the Procfile runs it) sends at most WEBHOOK_TENANT_IN_FLIGHT deliveries of a
tenant at once, and a delivery that finds its tenant's slots taken does not wait for one."""

import pytest

from connections.models import OutboundAttempt, OutboundDelivery
from connections.tasks import send_due_webhooks
from sandbox.listener import Listener, Reply
from sandbox.listener import start as start_listener
from tests import factories
from tests.support.waiting import wait_for
from tests.support.webhooks import PRIMARY
from tests.support.worker import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IN_FLIGHT = 2
# Longer than the wait for the other tenant's delivery below: a held delivery cannot have
# ended (and freed a thread) by the time the other tenant's is heard, unless it never took one.
DEADLINE = 20


@pytest.fixture
def held_listener():
    heard = start_listener(Listener())
    heard.default = Reply(hold=True)
    yield heard
    heard.stop()


def test_a_slow_listener_of_one_tenant_does_not_delay_anothers_delivery(
    manu_app, listener, held_listener, listen, deliver, globex, carol
):
    slow = listen(manu_app, held_listener)
    other = factories.registered_app(
        globex,
        carol,
        PRIMARY,
        provider="manu_online",
        name="Globex ERP",
        client_id="g-client",
        redirect_uris=["https://portal.example/oauth/callback/"],
        scopes=["API_ALL"],
    )
    fast = listen(other, listener)
    env = {
        "WEBHOOK_TENANT_IN_FLIGHT": str(IN_FLIGHT),
        "WEBHOOK_DEADLINE": str(DEADLINE),
        "WEBHOOK_RETRY_BASE_SECONDS": "0.1",
    }
    with celery_worker(concurrency=4, pool="threads", queues="webhooks", extra_env=env):
        for n in range(6):  # more than the worker has threads
            assert deliver(slow, {"account_id": "x", "n": n}).status_code == 200
        wait_for(lambda: held_listener.in_flight == IN_FLIGHT, timeout=30)
        assert deliver(fast, {"account_id": "y"}).status_code == 200

        wait_for(lambda: listener.count() == 1, timeout=DEADLINE - 5)
        # Heard while the slow tenant's first deliveries are still held, not after them.
        assert not OutboundAttempt.objects.filter(delivery__app=slow).exists()
        assert held_listener.most_in_flight == IN_FLIGHT

        held_listener.release()
        slow_rows = OutboundDelivery.objects.filter(app=slow)

        def all_delivered():
            send_due_webhooks()  # as beat does, for any left pending
            return slow_rows.filter(status="delivered").count() == 6

        wait_for(all_delivered, timeout=60, every=0.5)
    assert held_listener.most_in_flight == IN_FLIGHT
    assert all(r.verified for r in held_listener.received + listener.received)
