from django.core.management.base import BaseCommand, CommandError

from connections.lifecycle import spool_entries, spool_replay


class Command(BaseCommand):
    help = (
        "List the provider answers waiting in the token spool (kept while the database "
        "refused them); --replay stores them now. Exits 1 while any entry is left."
    )

    def add_arguments(self, parser):
        parser.add_argument("--replay", action="store_true", help="store what the spool holds")

    def handle(self, *args, replay: bool, **options):
        if replay:
            self.stdout.write(f"settled {spool_replay()} spooled answers")
        entries = spool_entries()
        for entry in entries:
            self.stdout.write(
                f"connection {entry.connection_id}: answered at {entry.answered_at} ({entry.name})"
            )
        if entries:
            raise CommandError(f"{len(entries)} answers still wait in the token spool")
        self.stdout.write(self.style.SUCCESS("the token spool is empty"))
