"""Thin Celery wrappers around the lifecycle. The schedule lives in the database
(next_refresh_at), never in the queue: no countdown or ETA outlives the broker's timeout."""

from celery import current_app, shared_task
from django.conf import settings
from django.utils import timezone

from connections.lifecycle.refresh import Outcome, refresh_connection
from connections.lifecycle.revoke import retry_revocation
from connections.models import Connection
from connections.selectors import connections_due_for_refresh, revocations_due

REVOCATION_BATCH = 50


@shared_task(name="connections.refresh_connection")
def refresh_connection_task(connection_id: int, reason: str = "scheduled") -> str:
    outcome = Outcome.SKIPPED
    try:
        outcome = refresh_connection(connection_id, reason=reason)
        return outcome
    finally:
        # Whatever happened, the row may be picked again by the next beat tick (storing new
        # tokens already cleared the mark).
        if outcome != Outcome.REFRESHED:
            Connection.objects.filter(pk=connection_id).update(refresh_enqueued_at=None)


@shared_task(name="connections.enqueue_due_refreshes")
def enqueue_due_refreshes() -> int:
    """Claim due connections in a bounded batch and enqueue one refresh task each."""
    now = timezone.now()
    due = connections_due_for_refresh(now=now, limit=settings.REFRESH_BATCH_SIZE)
    claimed = Connection.claim_for_refresh(due, now=now)
    # One broker connection for the whole batch, not one checkout per message.
    with current_app.producer_or_acquire() as producer:
        for pk in claimed:
            refresh_connection_task.apply_async((pk,), producer=producer)
    return len(claimed)


@shared_task(name="connections.retry_revocations")
def retry_revocations() -> int:
    """Try again to revoke what disconnects left unconfirmed, a bounded batch per tick. Run
    inline: rare, and each try takes the connection's lease, so overlapping ticks are safe."""
    due = revocations_due(now=timezone.now(), limit=REVOCATION_BATCH)
    return sum(1 for pk in due if retry_revocation(pk) is not None)
