from celery import shared_task
from django.core.mail import send_mail
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


@shared_task(name="portal.tasks.send_email")
def send_email(recipients: list[str], subject: str, body: str) -> int:
    """A mail to a person (an invitation, an address to confirm), queued after commit so no
    request waits on SMTP."""
    return send_mail(subject, body, None, recipients)
