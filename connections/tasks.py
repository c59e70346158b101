"""Thin Celery wrappers around the lifecycle. The schedule lives in the database
(next_refresh_at), never in the queue: no countdown or ETA outlives the broker's timeout."""

import logging
import math
from datetime import timedelta
from itertools import pairwise

from celery import current_app, shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from connections import (
    activity,
    alerts,
    audit,
    webhook_events,
    webhooks_inbound,
    webhooks_outbound,
)
from connections.lifecycle import (
    Outcome,
    connection_refresh,
    connection_retry_revocation,
    connection_unclaim,
    connections_claim_due,
    spool_replay,
)
from connections.selectors import revocations_due

log = logging.getLogger(__name__)
REVOCATION_BATCH = 50
PRUNE_BATCH, PRUNE_MAX_BATCHES = 5000, 200


def _refresh_claimed(connection_id: int, reason: str) -> str:
    outcome = Outcome.SKIPPED
    try:
        outcome = connection_refresh(connection_id, reason=reason)
        return outcome
    finally:
        # Whatever happened, the row may be picked again by the next beat tick (storing new
        # tokens already cleared the mark).
        if outcome != Outcome.REFRESHED:
            connection_unclaim(connection_id)


@shared_task(name="connections.refresh_connection")
def refresh_connection_task(connection_id: int, reason: str = "scheduled") -> str:
    """One claimed connection (what the beat enqueued before it sent batches: such messages
    may still wait in the queue after an upgrade)."""
    return _refresh_claimed(connection_id, reason)


@shared_task(name="connections.refresh_connections")
def refresh_connections_task(connection_ids: list[int], reason: str = "scheduled") -> int:
    """Claimed connections, refreshed one after another on this worker thread (the pool's
    threads run such tasks side by side): one broker message and one database health check
    for the lot. One that fails is logged and unclaimed, and the next is still refreshed.
    Returns how many were refreshed."""
    refreshed = 0
    for pk in connection_ids:
        try:
            refreshed += _refresh_claimed(pk, reason) == Outcome.REFRESHED
        except Exception:
            log.exception("refreshing connection %s failed", pk)
    return refreshed


def task_batches(connection_ids: list[int]) -> list[list[int]]:
    """A tick's claim spread over the workers' refresh threads in whole waves: REFRESH_THREADS
    tasks (fewer for a small claim), or twice as many, and so on, so that none holds more than
    REFRESH_TASK_SIZE; their sizes differ by at most one, in claim order.

    Whole waves because a thread refreshes its task's connections one after another: 1,500
    claimed over 64 threads in tasks of 20 made 75 tasks, and the last 11 ran on 11 threads
    while 53 stood idle (a third of the round's time at a provider 200 ms away)."""
    n = len(connection_ids)
    threads = max(1, settings.REFRESH_THREADS)
    most = max(1, settings.REFRESH_TASK_SIZE)
    count = min(n, threads * math.ceil(n / (threads * most)))
    size, extra = divmod(n, count) if count else (0, 0)
    # The first `extra` tasks take one more each.
    bounds = [index * size + min(index, extra) for index in range(count + 1)]
    return [connection_ids[start:end] for start, end in pairwise(bounds)]


@shared_task(name="connections.enqueue_due_refreshes")
def enqueue_due_refreshes() -> int:
    """Settle what the token spool holds, then claim due connections in a bounded batch and
    enqueue them, a few to a task."""
    spool_replay()
    claimed = connections_claim_due(now=timezone.now(), limit=settings.REFRESH_BATCH_SIZE)
    # One broker connection for the whole batch, not one checkout per message.
    with current_app.producer_or_acquire() as producer:
        for batch in task_batches(claimed):
            refresh_connections_task.apply_async((batch,), producer=producer)
    return len(claimed)


@shared_task(name="connections.retry_revocations")
def retry_revocations() -> int:
    """Try again to revoke what disconnects left unconfirmed, a bounded batch per tick. Run
    inline: rare, and each try takes the connection's lease, so overlapping ticks are safe."""
    due = revocations_due(now=timezone.now(), limit=REVOCATION_BATCH)
    return sum(1 for pk in due if connection_retry_revocation(pk) is not None)


@shared_task(name="connections.send_alert")
def send_alert(
    tenant_id: int,
    subject: str,
    body: str,
    path: str = "",
    key: str = "",
    owner_id: int | None = None,
) -> int:
    return alerts.send(
        tenant_id=tenant_id, subject=subject, body=body, path=path, key=key, owner_id=owner_id
    )


@shared_task(name="connections.send_expiry_digests")
def send_expiry_digests() -> int:
    return alerts.send_expiry_digests()


@shared_task(name="connections.roll_up_activity")
def roll_up_activity() -> int:
    return activity.roll_up()


@shared_task(name="connections.prune_audit_events")
def prune_audit_events() -> int:
    """Delete events older than AUDIT_RETENTION_DAYS, in bounded batches (no long lock)."""
    before = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted = audit.prune(before=before, batch=PRUNE_BATCH, max_batches=PRUNE_MAX_BATCHES)
    activity.prune(before=before)
    return deleted


@shared_task(name="connections.prune_inbound_webhooks")
def prune_inbound_webhooks() -> int:
    """Delete deliveries, inbound and outbound (but those still on their way), older than
    WEBHOOK_RETENTION_DAYS, in bounded batches."""
    before = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    sizes = {"batch": PRUNE_BATCH, "max_batches": PRUNE_MAX_BATCHES}
    return webhooks_outbound.prune(before=before, **sizes) + webhooks_inbound.prune(
        before=before, **sizes
    )


#: deliveries one task sends in a row for a tenant whose slot it holds
DRAIN_LIMIT = 50
SWEEP_BATCH = 500


@shared_task(name="connections.deliver_webhook")
def deliver_webhook(delivery_id: int) -> int:
    return webhooks_outbound.drain(delivery_id, limit=DRAIN_LIMIT)


@shared_task(name="connections.send_due_webhooks")
def send_due_webhooks() -> int:
    """Put back claims whose worker died, then queue due deliveries (retries, and any whose
    first queueing the broker lost), a few per tenant."""
    webhooks_outbound.release_lapsed()
    due = webhooks_outbound.due(limit=SWEEP_BATCH)
    with current_app.producer_or_acquire() as producer:
        for pk in due:
            deliver_webhook.apply_async((pk,), producer=producer)
    return len(due)


@shared_task(name="connections.emit_lapsing_events")
def emit_lapsing_events() -> int:
    return webhook_events.emit_lapsing(now=timezone.now())


@worker_ready.connect
def _replay_spool_at_start(sender=None, **kwargs) -> None:
    """A worker that died during a database outage left answers in this host's spool."""
    try:
        settled = spool_replay()
    except Exception:  # noqa: BLE001 - the beat replays again within a minute
        log.exception("replaying the token spool at worker start failed")
        return
    if settled:
        log.warning("replayed %s spooled token answers at worker start", settled)
