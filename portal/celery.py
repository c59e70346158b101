import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The schedule is CELERY_BEAT_SCHEDULE in settings (read with the rest of the settings, .env
# included); the work each entry does lives in the database.
# Exactly one beat sends: the others wait as standbys (portal/single_beat.py).
app.conf.beat_scheduler = "portal.single_beat:LockedScheduler"
