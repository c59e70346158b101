"""`manage.py expiry_report`: what needs attention, for cron and monitoring.

Lists the connections that need re-authorisation or whose refresh token ends within the
window (--within, 30 days), in every tenant or one. Exit status: 0 nothing to do, 1 something
needs attention (the rows are printed), 2 a usage error (an unknown tenant, a bad option).
Progress goes to stderr every PROGRESS rows, so a large run shows it is alive.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from connections import exports
from connections.listing import lapsing_q
from connections.models import Connection
from portal.models import Tenant

PROGRESS = 10_000
TABLE_COLUMNS = ("id", "status", "refresh_expires_at", "app", "account_name", "last_error")


class Command(BaseCommand):
    help = (
        "Connections needing re-authorisation or whose refresh token ends within --within "
        "days. Exits 1 when there are any, 0 when none, 2 on a usage error."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="a tenant's slug (default: every tenant)")
        parser.add_argument("--within", type=int, default=30, help="days (default 30)")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, *args, tenant: str | None, within: int, format: str, **options):
        if within < 1 or within > 3650:
            raise CommandError("--within is a number of days from 1 to 3650.", returncode=2)
        qs = Connection.objects.all()
        if tenant is not None:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No tenant with the slug {tenant!r}.", returncode=2)
            qs = qs.filter(tenant=found)
        now = timezone.now()
        due = qs.filter(Q(status=Connection.Status.NEEDS_REAUTH) | lapsing_q(now, within)).order_by(
            "tenant_id", "refresh_expires_at", "id"
        )
        total = due.count()
        self.stderr.write(f"{total} connection(s) need attention; writing them…")
        written = self._write(exports.records(due), format, total)
        if written:
            self.stderr.write(
                f"{written} connection(s) need re-authorisation or lapse within {within} days."
            )
            sys.exit(1)
        self.stderr.write(f"Nothing needs re-authorisation or lapses within {within} days.")

    def _rows(self, records, total: int):
        self.written = 0
        for row in records:
            self.written += 1
            if self.written % PROGRESS == 0:
                self.stderr.write(f"  … {self.written} of {total}")
            yield row

    def _write(self, records, fmt: str, total: int) -> int:
        """Write the rows as they come from the cursor; the number written."""
        rows, out = self._rows(records, total), self.stdout
        if fmt == "json":
            out.write("[", ending="")
            for i, row in enumerate(rows):
                out.write(("," if i else "") + json.dumps(exports.json_row(row)), ending="")
            out.write("]")
        elif fmt == "csv":
            for line in exports.csv_lines_of(rows):
                out.write(line, ending="")
        else:
            for row in rows:
                cells = [exports.cell(row[c]) or "—" for c in TABLE_COLUMNS]
                cells[-1] = cells[-1][:80]
                out.write("  ".join(cells))
        return self.written
