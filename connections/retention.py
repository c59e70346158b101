"""Deleting old rows without a long lock: oldest first, a bounded batch per statement."""

from django.db.models import QuerySet


def delete_before(rows: QuerySet, field: str, *, before, batch: int, max_batches: int) -> int:
    """Delete the rows whose `field` is before `before`, `batch` rows per statement and at
    most `max_batches` statements; the number deleted. What is left goes at the next run."""
    deleted = 0
    for _ in range(max_batches):
        old = rows.filter(**{f"{field}__lt": before}).order_by(field)
        ids = list(old.values_list("pk", flat=True)[:batch])
        if not ids:
            break
        deleted += rows.model.objects.filter(pk__in=ids).delete()[0]
    return deleted
