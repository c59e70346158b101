import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The schedule is CELERY_BEAT_SCHEDULE in settings (read with the rest of the settings, .env
# included); the work each entry does lives in the database.
# Exactly one beat sends: the others wait as standbys (portal/single_beat.py).
app.conf.beat_scheduler = "portal.single_beat:LockedScheduler"


@worker_init.connect
def keep_database_connections(**_) -> None:
    """Each of the worker's threads keeps its database connection across tasks (Celery's
    Django fixup closes it after each task unless it is younger than CONN_MAX_AGE). Set on
    the alias's settings, which every connection the worker opens from now on reads."""
    from django.conf import settings
    from django.db import connections

    connections.settings["default"]["CONN_MAX_AGE"] = settings.WORKER_CONN_MAX_AGE


@task_prerun.connect
@task_postrun.connect
def close_broken_connections(task=None, **_) -> None:
    """What Django does around each request: drop a connection that errored (the database
    restarted) or outlived CONN_MAX_AGE, so the next task opens a fresh one. Not for a task
    run eagerly, inside its caller's transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def leave_the_workers_process_group(**_) -> None:
    """A pool process takes a process group of its own: a stop signal sent to the worker's
    group (honcho on Ctrl-C, `kill -- -PID`, tests/support/worker.py) reaches the worker
    alone, which finishes the running tasks and stops its pool (a warm shutdown).

    In the worker's group, the pool processes died of that SIGTERM mid-task, and one of them
    often while holding the pool's queue lock: the worker then hung at exit (billiard's
    _help_stuff_finish) until SIGKILLed. A pool process still dies with the worker (celery
    sets its parent-death signal), and billiard already stops a group leader by its group."""
    os.setpgid(0, 0)
