"""Fault injection for the token endpoints: fail, throttle, slow down, trickle or lose the next
N calls.

Faults are rows keyed by provider and client id; each call takes one unit with a conditional
UPDATE, so "the next N calls" holds across threads and processes.
"""

from django.db.models import F

from sandbox.models import Fault
from sandbox.profiles import get_profile

KINDS = tuple(Fault.Kind.values)


def inject(
    *,
    provider: str,
    client_id: str,
    kind: str,
    count: int = 1,
    status: int = 502,
    retry_after: int = 2,
    latency_ms: int = 0,
) -> Fault:
    """error_5xx: the next `count` token calls answer `status` with server_error.
    rate_limit: they answer 429 with Retry-After. latency: they sleep latency_ms, then run.
    lost_response: they are processed (a refresh token is consumed, a new pair issued) but the
    reply is a 502, as when a proxy drops the provider's answer.
    trickle: they are processed and committed like lost_response, then the reply (the token
    pair, or the error the grant gave) is sent slowly: status line and headers at once, the
    JSON body in small pieces spread evenly over latency_ms, as from a congested link; the
    sleeping between pieces adds up to at most latency_ms. A call hit by lost_response takes
    no trickle unit."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
    if kind == Fault.Kind.ERROR_5XX and not 500 <= int(status) <= 599:
        raise ValueError("error_5xx needs a 5xx status")
    if int(count) < 1:
        raise ValueError("count must be at least 1")
    return Fault.objects.create(
        provider=get_profile(provider).key,
        client_id=client_id,
        kind=kind,
        remaining=int(count),
        status=int(status),
        retry_after=max(0, int(retry_after)),
        latency_ms=max(0, int(latency_ms)),
    )


def clear(*, provider: str, client_id: str | None = None, kind: str | None = None) -> int:
    """Remove faults; the count is of those that still had calls to hit."""
    faults = Fault.objects.filter(provider=get_profile(provider).key)
    if client_id is not None:
        faults = faults.filter(client_id=client_id)
    if kind is not None:
        faults = faults.filter(kind=kind)
    pending = faults.filter(remaining__gt=0).count()
    faults.delete()  # used-up rows too
    return pending


def take(provider: str, client_id: str, *kinds: str) -> Fault | None:
    """Consume one unit of the oldest pending fault of these kinds, or None."""
    candidates = Fault.objects.filter(
        provider=provider, client_id=client_id, kind__in=kinds, remaining__gt=0
    ).order_by("created_at", "pk")
    for fault in candidates:
        # Another request may take the last unit between our read and this write.
        if Fault.objects.filter(pk=fault.pk, remaining__gt=0).update(remaining=F("remaining") - 1):
            return fault
    return None
