"""Exactly one beat: a second beat would enqueue every periodic task twice.

With Redis the lock is a key renewed by a daemon thread; without it, an flock on a file in
VAR_DIR (the embedded default runs on one machine). A second beat exits with a message.
"""

import fcntl
import logging
import os
import socket
import sys
import threading

import redis
from django.conf import settings

log = logging.getLogger(__name__)
KEY = "portal:beat-lock"
TTL = 60
_held = []


def _exit(holder: str) -> None:
    sys.stderr.write(f"Another celery beat is running ({holder}); run exactly one beat.\n")
    os._exit(2)


def hold_beat_lock() -> None:
    me = f"{socket.gethostname()}:{os.getpid()}"
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        if not client.set(KEY, me, nx=True, ex=TTL):
            _exit(client.get(KEY).decode(errors="replace") if client.get(KEY) else "unknown")

        def renew():
            stop = threading.Event()
            while not stop.wait(TTL / 3):
                try:
                    if client.get(KEY) not in (me.encode(), None):
                        _exit("lock taken over")
                    client.set(KEY, me, ex=TTL)
                except redis.RedisError:
                    log.warning("could not renew the beat lock", exc_info=True)

        threading.Thread(target=renew, daemon=True, name="beat-lock").start()
        return
    handle = open(settings.VAR_DIR / "beat.lock", "a+")  # noqa: SIM115 - held for the process life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        _exit(handle.read().strip() or "unknown")
    handle.truncate(0)
    handle.write(me)
    handle.flush()
    _held.append(handle)
