"""The connections table as CSV (streamed) and as JSON-ready dicts.

CSV rows are read in chunks from a database cursor and written as they come, so memory does
not grow with the number of rows. A cell that a spreadsheet would run as a formula (a provider
can name an account "=HYPERLINK(…)") is prefixed with a quote.
"""

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from connections.models import Connection
from connections.providers import get_provider

CHUNK = 2000
COLUMNS = (
    ("id", "id"),
    ("app", "app__name"),
    ("provider", "app__provider"),
    ("account_id", "account_id"),
    ("account_name", "account_name"),
    ("status", "status"),
    ("kind", "kind"),
    ("owner", "user__username"),
    ("access_expires_at", "access_expires_at"),
    ("refresh_expires_at", "refresh_expires_at"),
    ("next_refresh_at", "next_refresh_at"),
    ("last_refreshed_at", "last_refreshed_at"),
    ("revocation_pending", "revoke_retry_at"),
    ("paused", "app__status"),
    ("failure_count", "failure_count"),
    ("last_error", "last_error"),
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: a refresh token that will never be used again has no expiry worth reporting
UNUSED_REFRESH = (Connection.Status.NEEDS_REAUTH, Connection.Status.REVOKED)


def cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def record(values: tuple) -> dict:
    row = dict(zip((name for name, _ in COLUMNS), values, strict=True))
    if row["status"] in UNUSED_REFRESH:
        row["refresh_expires_at"] = None
    row["revocation_pending"] = row["revocation_pending"] is not None
    # A live connection of a disabled app: not refreshed, its token not handed out.
    row["paused"] = row["status"] in Connection.REFRESHABLE and row["paused"] == "disabled"
    row["provider_name"] = get_provider(row["provider"]).name
    return row


def records(qs: QuerySet[Connection]) -> Iterator[dict]:
    for values in qs.values_list(*(field for _, field in COLUMNS)).iterator(chunk_size=CHUNK):
        yield record(values)


class _Echo:
    """csv.writer writes into this and gets the line back, for streaming."""

    def write(self, value: str) -> str:
        return value


def csv_lines_of(rows: Iterable[dict]) -> Iterator[str]:
    """A header line, then a line per row."""
    writer = csv.writer(_Echo())
    names = [name for name, _ in COLUMNS]
    yield writer.writerow(names)
    for row in rows:
        yield writer.writerow([cell(row[name]) for name in names])


def csv_lines(qs: QuerySet[Connection]) -> Iterator[str]:
    return csv_lines_of(records(qs))


def json_row(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
