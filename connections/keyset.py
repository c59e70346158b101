"""Keyset paging, newest first, for the long logs (audit trail, webhook deliveries): "Older"
continues below the last row shown, so a page costs the same however deep it is."""

from urllib.parse import urlencode

from django.db.models import Q, QuerySet


def newest_first(rows: QuerySet, field: str, *, before, query: dict, per_page: int) -> dict:
    """One page of `rows` ordered by `field` then id, descending, starting below the row
    `before` (an id, or None for the newest); with the links to the next and first pages."""
    if before:
        cursor = rows.filter(pk=before).values_list(field, flat=True).first()
        if cursor is not None:
            rows = rows.filter(
                Q(**{f"{field}__lt": cursor}) | Q(**{field: cursor, "pk__lt": before})
            )
    page = list(rows.order_by(f"-{field}", "-id")[: per_page + 1])
    more, page = len(page) > per_page, page[:per_page]
    query = {k: v for k, v in query.items() if k != "before" and v}
    return {
        "rows": page,
        "older": f"?{urlencode({**query, 'before': page[-1].pk})}" if more else "",
        "newest": f"?{urlencode(query)}" if before else "",
    }
