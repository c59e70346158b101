"""Token-endpoint rate limit per client id, shared by every worker.

A sliding-window log: a request may go when fewer than `limit` went in the last `window`
seconds. Unlike a refilling bucket it never exceeds a provider that counts a sliding window,
and it still lets a full burst through at once. Redis holds the log when configured; the
database holds it otherwise (the embedded default) or when Redis does not answer.
"""

import logging
import time

import redis
from django.conf import settings
from django.db import transaction

from connections.models import RateLimitWindow
from connections.providers import RateLimit

log = logging.getLogger(__name__)
# A little slack so our clock and the provider's never disagree about the window's edge.
SLACK = 0.25

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


def _try_redis(key: str, limit: RateLimit, now: float) -> float:
    member = f"{now:.6f}-{time.monotonic_ns()}"
    window = limit.per_seconds + SLACK
    return float(_redis().eval(_LUA, 1, key, now, window, limit.requests, member))


def _try_db(key: str, limit: RateLimit, now: float) -> float:
    window = limit.per_seconds + SLACK
    with transaction.atomic():
        row, _ = RateLimitWindow.objects.select_for_update().get_or_create(key=key)
        stamps = [s for s in row.stamps if s > now - window]
        if len(stamps) < limit.requests:
            row.stamps = [*stamps, now]
            row.save(update_fields=["stamps"])
            return 0.0
        row.stamps = stamps
        row.save(update_fields=["stamps"])
        return min(stamps) + window - now


def try_acquire(key: str, limit: RateLimit) -> float:
    """Take a slot now (returns 0) or say how many seconds until one frees up."""
    now = time.time()
    if settings.REDIS_URL:
        try:
            return _try_redis(key, limit, now)
        except redis.RedisError:
            log.warning("Redis unavailable for the rate limiter; using the database")
    return _try_db(key, limit, now)


def acquire(key: str, limit: RateLimit | None, *, max_wait: float) -> bool:
    """Wait (bounded) for a slot; False when none frees up within max_wait seconds."""
    if limit is None:
        return True
    deadline = time.monotonic() + max_wait
    while True:
        wait = try_acquire(key, limit)
        if wait <= 0:
            return True
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)


def key_for(app) -> str:
    return f"ratelimit:token:{app.provider}:{app.client_id}"
