import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The schedule is declared here, in code; the work each entry does lives in the database.
app.conf.beat_schedule = {
    "heartbeat": {"task": "portal.tasks.heartbeat", "schedule": 30.0},
    "enqueue-due-refreshes": {
        "task": "connections.enqueue_due_refreshes",
        "schedule": float(os.environ.get("REFRESH_BEAT_SECONDS", "60")),
    },
    "retry-revocations": {"task": "connections.retry_revocations", "schedule": 60.0},
}


@beat_init.connect
def _only_one_beat(sender=None, **kwargs):
    from portal.single_beat import hold_beat_lock

    hold_beat_lock()
