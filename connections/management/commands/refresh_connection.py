from django.core.management.base import BaseCommand, CommandError

from connections.lifecycle import Outcome, connection_refresh
from connections.models import Connection

FAILED = {
    Outcome.NEEDS_REAUTH,
    Outcome.APP_CREDENTIALS_INVALID,
    Outcome.RETRY_SCHEDULED,
    Outcome.SKIPPED,
    Outcome.BUSY,
}


class Command(BaseCommand):
    help = "Refresh one connection now, under its lease, and say what happened."

    def add_arguments(self, parser):
        parser.add_argument("connection_id", type=int)

    def handle(self, *args, connection_id: int, **options):
        if not Connection.objects.filter(pk=connection_id).exists():
            raise CommandError(f"No connection with id {connection_id}.")
        outcome = connection_refresh(connection_id, reason="manual", force=True)
        conn = Connection.objects.get(pk=connection_id)
        line = f"connection {connection_id}: {outcome} (status {conn.status})"
        if outcome in FAILED:
            raise CommandError(f"{line}: {conn.last_error or 'see the connection page'}")
        self.stdout.write(self.style.SUCCESS(line))
