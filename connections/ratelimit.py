"""Token-endpoint rate limit per client id, shared by every worker.

A sliding-window log: a request may go when fewer than `limit` went in the last `window`
seconds. Unlike a refilling bucket it never exceeds a provider that counts a sliding window,
and it still lets a full burst through at once. Redis holds the log when configured; the
database holds it otherwise (the embedded default) or when Redis does not answer.
"""

import logging
import time
import uuid

import redis
from django.conf import settings
from django.db import transaction

from connections.models import RateLimitWindow
from connections.providers import RateLimit

log = logging.getLogger(__name__)
# A little slack on top of settling at the answer (see Slot), for clock granularity.
SLACK = 0.1

_LUA = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('EXPIRE', key, math.ceil(window) + 1)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5
        )
    return _redis_client


def _try_redis(key: str, limit: RateLimit, now: float, member: str) -> float:
    window = limit.per_seconds + SLACK
    return float(_redis().eval(_LUA, 1, key, now, window, limit.requests, member))


def _try_db(key: str, limit: RateLimit, now: float, member: str) -> float:
    window = limit.per_seconds + SLACK
    with transaction.atomic():
        row, _ = RateLimitWindow.objects.select_for_update().get_or_create(key=key)
        stamps = [(t, m) for t, m in row.stamps if t > now - window]
        wait = 0.0
        if len(stamps) < limit.requests:
            stamps.append((now, member))
        else:
            wait = min(t for t, _ in stamps) + window - now
        row.stamps = stamps
        row.save(update_fields=["stamps"])
        return wait


def _settle_db(key: str, member: str, now: float) -> None:
    with transaction.atomic():
        row = RateLimitWindow.objects.select_for_update().filter(key=key).first()
        if row is not None:
            row.stamps = [(now if m == member else t, m) for t, m in row.stamps]
            row.save(update_fields=["stamps"])


def _use_redis() -> bool:
    return bool(settings.REDIS_URL)


def try_acquire(key: str, limit: RateLimit, member: str) -> float:
    """Take a slot now (returns 0) or say how many seconds until one frees up."""
    now = time.time()
    if _use_redis():
        try:
            return _try_redis(key, limit, now, member)
        except redis.RedisError:
            log.warning("Redis unavailable for the rate limiter; using the database")
    return _try_db(key, limit, now, member)


class Slot:
    """A request's place in the window. `settle()` after the answer moves its stamp to the
    moment the answer came back: the provider received the request no later than that, so a
    window counted from there is never shorter than the provider's, however late the request
    reached it (a provider with fixed windows starts them at its own first receipt)."""

    def __init__(self, key: str = "", member: str = "", *, waited: bool = False):
        self.key, self.member = key, member
        #: whether the request had to wait for this slot (counted in /metrics)
        self.waited = waited

    def settle(self) -> None:
        if not self.member:
            return
        now = time.time()
        if _use_redis():
            try:
                _redis().zadd(self.key, {self.member: now}, xx=True)
                return
            except redis.RedisError:
                log.warning("Redis unavailable for the rate limiter; using the database")
        _settle_db(self.key, self.member, now)


def acquire(key: str, limit: RateLimit | None, *, max_wait: float) -> Slot | None:
    """Wait (bounded) for a slot; None when none frees up within max_wait seconds."""
    if limit is None:
        return Slot()
    member = uuid.uuid4().hex
    deadline = time.monotonic() + max_wait
    waited = False
    while True:
        wait = try_acquire(key, limit, member)
        if wait <= 0:
            return Slot(key, member, waited=waited)
        if time.monotonic() + wait > deadline:
            return None
        time.sleep(wait)
        waited = True


def key_for(app) -> str:
    return f"ratelimit:token:{app.provider}:{app.client_id}"
