"""Sending deliveries to a tenant's listener: signed the Standard Webhooks way, through the
egress path, retried with backoff, one tenant never holding up another.

A delivery is pending (due at next_attempt_at), sending (claimed by one worker until
lease_until), delivered or failed. An attempt is claimed by a conditional UPDATE, so two
workers never send the same attempt; a worker that dies mid-send leaves a lapsed claim that
the sweep puts back (the listener may then hear the message twice, with the same webhook-id:
at least once, never lost).

Isolation: at most WEBHOOK_TENANT_IN_FLIGHT deliveries of one tenant are sending at a time
(counted under a lock on the tenant's row). A worker that finds the tenant's slots taken does
not wait: the delivery stays pending, and the worker that frees a slot takes the tenant's
next due delivery. A tenant's slow listener thus holds at most that many of the webhook
worker's threads, each for at most WEBHOOK_DEADLINE seconds.

Retried: no answer (timeouts, refused connections), 5xx, and 408, 409, 423, 425 and 429 (after
at least its Retry-After). Any other answer is final: a 4xx will not change by itself, and a
redirect is never followed (the listener URL is tenant input). An admin can Redeliver.
"""

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from connections import audit, destinations, egress, metrics, retention
from connections.models import AuditEvent, OutboundAttempt, OutboundDelivery
from connections.notify import tell
from connections.webhook_events import queue_send
from connections.webhook_listener import shown_url, sign, signing_values
from connections.webhooks_inbound import clean
from portal.models import Tenant

log = logging.getLogger(__name__)
Status = OutboundDelivery.Status
RETRIED_CODES = frozenset({408, 409, 423, 425, 429})
USER_AGENT = "integration-portal-webhooks/1"

# --- claiming ------------------------------------------------------------------------------


def _lease_seconds() -> float:
    return settings.WEBHOOK_DEADLINE + 30


def claim(pk: int, *, synchronous: bool = False) -> OutboundDelivery | None:
    """Take the delivery for one attempt, if it is due (or `synchronous`: the provider's
    request waits) and its tenant has a free slot; None otherwise."""
    now = timezone.now()
    row = OutboundDelivery.objects.filter(pk=pk).values("tenant_id", "status").first()
    if row is None or row["status"] != Status.PENDING:
        return None
    due = OutboundDelivery.objects.filter(pk=pk, status=Status.PENDING)
    if not synchronous:
        due = due.filter(next_attempt_at__lte=now)
    if _slots_taken(row["tenant_id"], now):  # a read first: no write lock to learn it is full
        return None
    with transaction.atomic():
        # The tenant's row is the lock its slots are counted under; NO KEY: inserts that
        # reference the tenant (deliveries, audit events) do not wait for it.
        Tenant.objects.select_for_update(no_key=True).filter(pk=row["tenant_id"]).first()
        if _slots_taken(row["tenant_id"], now):
            return None
        taken = due.update(
            status=Status.SENDING,
            lease_until=now + timedelta(seconds=_lease_seconds()),
            attempts=F("attempts") + 1,
        )
    if not taken:
        return None
    return OutboundDelivery.objects.select_related("app__tenant").get(pk=pk)


def _slots_taken(tenant_id: int, now) -> bool:
    sending = OutboundDelivery.objects.filter(
        tenant_id=tenant_id, status=Status.SENDING, lease_until__gt=now
    ).count()
    return sending >= settings.WEBHOOK_TENANT_IN_FLIGHT


def next_due_of_tenant(tenant_id: int) -> int | None:
    return (
        OutboundDelivery.objects.filter(
            tenant_id=tenant_id, status=Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)
        .first()
    )


# --- one attempt ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attempt came to: the listener's status, or why there was none."""

    code: int | None = None
    error: str = ""
    excerpt: str = ""
    retry_after: float | None = None
    ms: int = 0
    #: no answer, and none will come by retrying (the URL is refused)
    final: bool = False
    timed_out: bool = False

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def retried(self) -> bool:
        if self.code is None:
            return not self.final
        return self.code >= 500 or self.code in RETRIED_CODES


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def post(delivery: OutboundDelivery, *, deadline: float) -> Answer:
    app = delivery.app
    body = delivery.body_text()
    stamp = int(time.time())
    values = signing_values(app)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(values, delivery.message_id, stamp, body),
    }
    started = time.monotonic()
    try:
        response = egress.send(
            "POST", app.listener_url, data=body.encode(), headers=headers, deadline=deadline
        )
    except destinations.Refused as exc:
        return Answer(error=clean(f"not sent: the listener URL {exc}", 255), final=True)
    except egress.DeadlineExceeded:
        return _answer(started, error=f"no answer within {deadline:g} s", timed_out=True)
    except egress.TooLarge as exc:
        # The status line came: a 2xx is delivered, however long the body that followed.
        return _answer(started, code=exc.status_code, excerpt="(an answer over 1 MB, not read)")
    except requests.ConnectionError:
        return _answer(started, error="could not connect to the listener")
    except requests.RequestException as exc:
        return _answer(started, error=clean(type(exc).__name__, 100))
    return _answer(
        started,
        code=response.status_code,
        excerpt=clean(response.content[:600].decode("utf-8", "replace"), 300),
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )


def _answer(started: float, **fields) -> Answer:
    return Answer(ms=int((time.monotonic() - started) * 1000), **fields)


def backoff(attempts: int) -> float:
    """Seconds before the attempt after `attempts` tries: exponential, capped, with jitter
    (half to all of it, so listeners that failed together do not retry together)."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * (4 ** max(0, attempts - 1))
    return min(settings.WEBHOOK_RETRY_MAX_SECONDS, base) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def settle(delivery: OutboundDelivery, answer: Answer, *, synchronous=False) -> str:
    """Record the attempt and what comes next; the delivery's new status."""
    now = timezone.now()
    error = answer.error or ("" if answer.delivered else _refusal(answer))
    fields = {
        "lease_until": None,
        "last_status_code": answer.code,
        "last_error": clean(error, 255),
        "last_duration_ms": answer.ms,
    }
    if answer.delivered:
        status = Status.DELIVERED
        fields.update(delivered_at=now, next_attempt_at=None, last_error="")
    elif answer.retried and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        status = Status.PENDING
        wait = backoff(delivery.attempts)
        if answer.retry_after is not None:  # the listener said when: never sooner than that
            wait = min(max(wait, answer.retry_after), settings.WEBHOOK_RETRY_MAX_SECONDS)
        fields["next_attempt_at"] = now + timedelta(seconds=wait)
    else:
        status = Status.FAILED
        fields["next_attempt_at"] = None
        if answer.retried:
            fields["last_error"] = clean(f"{error}; gave up after {delivery.attempts} attempts")
    # Only this claim's: lease_until is the claim's own value. A claim that outlived its lease
    # was put back by the sweep and may be another worker's now; this attempt then records
    # nothing (the listener may hear the message twice, with the same webhook-id).
    mine = OutboundDelivery.objects.filter(
        pk=delivery.pk, status=Status.SENDING, lease_until=delivery.lease_until
    ).update(status=status, **fields)
    if not mine:
        log.warning("delivery %s: the claim lapsed during its attempt", delivery.pk)
        return status
    OutboundAttempt.objects.create(
        delivery=delivery,
        started_at=now - timedelta(milliseconds=answer.ms),
        duration_ms=answer.ms,
        status_code=answer.code,
        error=clean(error, 255),
        response_excerpt=answer.excerpt,
        synchronous=synchronous,
    )
    metrics.inc(metrics.WEBHOOK_ATTEMPTS, delivery.event_type, status)
    metrics.observe(metrics.WEBHOOK_SECONDS, answer.ms / 1000, delivery.event_type)
    if status == Status.FAILED:
        _tell_failed(delivery, fields["last_error"], now=now)
    return status


def _tell_failed(delivery: OutboundDelivery, error: str, *, now) -> None:
    """The tenant's admins and ops hear once a day per app that its listener is losing
    deliveries (each one stays on the Sent page, to redeliver)."""
    app = delivery.app
    path = reverse("app_webhook_sent_list", args=[app.tenant.slug, app.pk]) + "?status=failed"
    tell(
        tenant=app.tenant,
        key=f"webhook-failed:{app.pk}:{now:%Y-%m-%d}",
        subject=f"{app.name}: deliveries to its listener are failing",
        body=f"A {delivery.event_type} delivery to {shown_url(app.listener_url)} failed: {error}. "
        "Fix the listener, then Redeliver it from the Sent page.",
        path=path,
    )


def _refusal(answer: Answer) -> str:
    if 300 <= answer.code < 400:
        return f"the listener redirected ({answer.code}); redirects are not followed"
    return f"the listener answered {answer.code}"


def attempt(pk: int) -> str | None:
    """One attempt at a delivery, if it can be claimed; its new status, or None."""
    delivery = claim(pk)
    if delivery is None:
        return None
    return settle(delivery, post(delivery, deadline=settings.WEBHOOK_DEADLINE))


def drain(pk: int, *, limit: int) -> int:
    """Send `pk` (or, if another worker already did, the tenant's next due delivery), then
    the same tenant's next due ones, at most `limit`: a freed slot is used at once, not at
    the next sweep. A tenant still owed deliveries after `limit` gets a follow-on task, so
    one tenant's backlog drains without holding a thread for long."""
    sent = 0
    tenant_id = OutboundDelivery.objects.filter(pk=pk).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        return 0
    while pk is not None and sent < limit:
        if attempt(pk) is None:
            # Taken by another worker, or not due: try the tenant's next once; a second
            # miss means its slots are taken, and whoever holds them passes them on.
            pk = next_due_of_tenant(tenant_id)
            if pk is None or attempt(pk) is None:
                return sent
        sent += 1
        pk = next_due_of_tenant(tenant_id)
    pass_on(tenant_id)
    return sent


def pass_on(tenant_id: int) -> None:
    """Queue the tenant's next due delivery, if any: a slot was just freed."""
    pk = next_due_of_tenant(tenant_id)
    if pk is not None:
        queue_send(pk)


def relay_now(delivery: OutboundDelivery) -> Answer | None:
    """Synchronous mode: one attempt while the provider's request waits; None when the
    tenant's slots are taken (the delivery stays queued). A failure is retried later as
    usual, so the message is not lost if the provider does not send it again."""
    claimed = claim(delivery.pk, synchronous=True)
    if claimed is None:
        return None
    answer = post(claimed, deadline=settings.WEBHOOK_SYNC_DEADLINE)
    settle(claimed, answer, synchronous=True)
    pass_on(claimed.tenant_id)
    return answer


# --- the sweep, redelivery, pruning ----------------------------------------------------------


def release_lapsed(*, now=None) -> int:
    """Claims whose worker died: back to pending, due now."""
    now = now or timezone.now()
    return OutboundDelivery.objects.filter(status=Status.SENDING, lease_until__lte=now).update(
        status=Status.PENDING, lease_until=None, next_attempt_at=now
    )


def due(*, limit: int) -> list[int]:
    """Due deliveries, oldest first, at most WEBHOOK_TENANT_IN_FLIGHT per tenant."""
    picked, per_tenant = [], {}
    rows = (
        OutboundDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "id")
        .values_list("pk", "tenant_id")[: limit * 4]
    )
    for pk, tenant_id in rows:
        if per_tenant.get(tenant_id, 0) < settings.WEBHOOK_TENANT_IN_FLIGHT:
            per_tenant[tenant_id] = per_tenant.get(tenant_id, 0) + 1
            picked.append(pk)
        if len(picked) >= limit:
            break
    return picked


@transaction.atomic
def redeliver(delivery: OutboundDelivery, *, actor) -> bool:
    """Send a delivered or failed message again, with the same webhook-id; False if it is
    still on its way."""
    taken = (
        OutboundDelivery.objects.filter(pk=delivery.pk)
        .exclude(status__in=[Status.PENDING, Status.SENDING])
        .update(status=Status.PENDING, next_attempt_at=timezone.now(), attempts=0)
    )
    if not taken:
        return False
    audit.record(
        AuditEvent.Kind.WEBHOOK_REDELIVERED,
        tenant=delivery.tenant,
        app=delivery.app,
        connection=delivery.connection,
        actor=actor,
        message=f"{delivery.event_type} {delivery.message_id} sent again.",
    )
    transaction.on_commit(lambda: queue_send(delivery.pk))
    return True


def prune(*, before, batch: int, max_batches: int) -> int:
    """Delete deliveries created before `before` (connections.retention)."""
    return retention.delete_before(
        OutboundDelivery.objects.exclude(status__in=[Status.PENDING, Status.SENDING]),
        "created_at",
        before=before,
        batch=batch,
        max_batches=max_batches,
    )
