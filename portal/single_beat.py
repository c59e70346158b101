"""Exactly one beat sends the schedule: two would enqueue every periodic task twice.

The check lives in the scheduler's tick(), not in a signal receiver: Celery logs and swallows
receiver exceptions, so a lock taken there failed open when Redis was down. Here a beat sends
nothing until it has confirmed the lock in this very tick, so it fails closed; a second beat
is a standby that takes over once the holder dies.

With REDIS_URL the lock is a key with a TTL that the holder renews on every tick; without it
(the embedded default, one machine) an flock on VAR_DIR/beat.lock, which the kernel releases
when the holder dies.
"""

import fcntl
import logging
import os
import secrets
import socket

import redis
from celery.beat import PersistentScheduler
from django.conf import settings

log = logging.getLogger(__name__)
KEY = "portal:beat-lock"
RETRY_SECONDS = 1.0  # how soon a beat without the lock looks again

# Compare-and-expire / compare-and-delete: a GET then SET could renew or delete a lock that
# expired and was taken by the standby in between.
IF_OURS = "if redis.call('get',KEYS[1])==ARGV[1] then return {} else return 0 end"
RENEW = IF_OURS.format("redis.call('pexpire',KEYS[1],ARGV[2])")
RELEASE = IF_OURS.format("redis.call('del',KEYS[1])")


def _me() -> str:
    # host:pid for people; the random part so a restarted beat that reuses the pid (containers
    # start at pid 1) never mistakes its predecessor's lock for its own.
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class RedisLock:
    def __init__(self, url: str, ttl: float):
        self.me, self.ttl_ms = _me(), int(ttl * 1000)
        # Short timeouts: a hung Redis must not stall the tick past the lock's TTL.
        timeout = min(2.0, ttl / 6)
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.renew = self.client.register_script(RENEW)
        self.release_script = self.client.register_script(RELEASE)

    def confirm(self) -> str | None:
        """None when this process holds the lock (now renewed), else the holder."""
        if self.renew(keys=[KEY], args=[self.me, self.ttl_ms]) == 1:
            return None
        if self.client.set(KEY, self.me, nx=True, px=self.ttl_ms):
            return None
        holder = self.client.get(KEY)
        return holder.decode(errors="replace") if holder else "nobody (expired just now)"

    def release(self) -> None:
        self.release_script(keys=[KEY], args=[self.me])


class FileLock:
    def __init__(self, path):
        self.me, self.held = _me(), False
        self.file = open(path, "a+")  # noqa: SIM115 - open for the process life: it holds the flock

    def confirm(self) -> str | None:
        if self.held:  # the kernel keeps it until we unlock or die
            return None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            return self.file.read().strip() or "unknown"
        self.held = True
        self.file.truncate(0)
        self.file.write(self.me)
        self.file.flush()
        return None

    def release(self) -> None:
        if self.held:
            self.file.truncate(0)
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.held = False


class LockedScheduler(PersistentScheduler):
    """Sends the schedule only while this process holds the beat lock."""

    def __init__(self, *args, **kwargs):
        # Save the schedule after every send: a standby taking over from the same file (the
        # embedded default) must not resend what the dead holder already sent.
        kwargs.setdefault("sync_every_tasks", 1)
        self._state = None
        ttl = settings.BEAT_LOCK_TTL
        if settings.REDIS_URL:
            self.lock = RedisLock(settings.REDIS_URL, ttl)
        else:
            self.lock = FileLock(settings.VAR_DIR / "beat.lock")
        super().__init__(*args, **kwargs)
        # Tick at least three times per TTL, so the holder renews well before the key expires.
        self.max_interval = min(self.max_interval, ttl / 3)

    def setup_schedule(self):
        # Deferred to the first tick holding the lock: a standby must not open (or write) the
        # schedule file that the active beat may be using.
        pass

    def tick(self, *args, **kwargs):
        try:
            holder = self.lock.confirm()
        except (redis.RedisError, OSError) as exc:
            where = "Redis" if isinstance(exc, redis.RedisError) else "lock file"
            message = "%s unavailable (%r): sending nothing until the beat lock is confirmed"
            self._note("unavailable", message, where, exc)
            return RETRY_SECONDS
        if holder is not None:
            self._note(f"waiting {holder}", "waiting for the beat lock (held by %s)", holder)
            return RETRY_SECONDS
        if self._store is None:
            super().setup_schedule()
        self._note("held", "holding the beat lock as %s: sending the schedule", self.lock.me)
        return super().tick(*args, **kwargs)

    def _note(self, state: str, message: str, *args) -> None:
        """Log once per change of state, not on every tick; drop the schedule when not held."""
        if state == self._state:
            return
        log.log(logging.INFO if state == "held" else logging.WARNING, message, *args)
        if self._state == "held":
            self._drop_schedule()
        self._state = state

    def _drop_schedule(self) -> None:
        # Closed while not ours, and reopened as the other holder left it if the lock comes
        # back, rather than resuming from a stale copy in memory.
        if self._store is not None:
            self._store.close()
        self._store, self._heap, self.old_schedulers = None, None, None

    def close(self):
        try:
            super().close()  # saves the schedule first, so the next holder starts from it
        finally:
            try:
                self.lock.release()
            except (redis.RedisError, OSError):
                log.warning("could not release the beat lock; it expires by itself", exc_info=True)
