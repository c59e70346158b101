from celery import shared_task
from django.db.models import F
from django.utils import timezone

from portal.models import Heartbeat


@shared_task(name="portal.tasks.heartbeat")
def heartbeat(name: str = "beat") -> None:
    """Proves beat schedules and a worker runs; the health check reads the timestamp."""
    updated = Heartbeat.objects.filter(name=name).update(
        beat_at=timezone.now(), count=F("count") + 1
    )
    if not updated:
        Heartbeat.objects.get_or_create(name=name, defaults={"beat_at": timezone.now(), "count": 1})
