import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The schedule is declared here, in code; the work each entry does lives in the database.
app.conf.beat_schedule = {
    "heartbeat": {
        "task": "portal.tasks.heartbeat",
        "schedule": float(os.environ.get("BEAT_HEARTBEAT_SECONDS", "30")),
    },
    "enqueue-due-refreshes": {
        "task": "connections.enqueue_due_refreshes",
        "schedule": float(os.environ.get("REFRESH_BEAT_SECONDS", "60")),
    },
    "retry-revocations": {"task": "connections.retry_revocations", "schedule": 60.0},
}

# Exactly one beat sends: the others wait as standbys (portal/single_beat.py).
app.conf.beat_scheduler = "portal.single_beat:LockedScheduler"
