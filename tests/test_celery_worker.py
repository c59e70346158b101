import pytest
from django.conf import settings

from portal.models import Heartbeat
from portal.tasks import heartbeat
from tests.support.waiting import wait_for
from tests.support.worker import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_runs_the_heartbeat_through_the_configured_broker():
    expected = "redis" if settings.REDIS_URL else "filesystem"
    assert settings.CELERY_BROKER_URL.startswith(expected)
    with celery_worker():
        heartbeat.delay(name="test-beat")
        beat = wait_for(lambda: Heartbeat.objects.filter(name="test-beat").first(), timeout=60)
    assert beat.count == 1
