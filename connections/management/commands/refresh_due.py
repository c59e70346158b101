from collections import Counter

from django.core.management.base import BaseCommand
from django.utils import timezone

from connections.lifecycle import connection_refresh, connections_due


class Command(BaseCommand):
    help = "Refresh every connection that is due now, in this process, with progress."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=10_000)

    def handle(self, *args, limit: int, **options):
        due = connections_due(now=timezone.now(), limit=limit)
        self.stdout.write(f"{len(due)} connections due")
        outcomes: Counter = Counter()
        for done, pk in enumerate(due, start=1):
            outcome = connection_refresh(pk, reason="scheduled")
            outcomes[outcome] += 1
            self.stdout.write(f"  [{done}/{len(due)}] connection {pk}: {outcome}")
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "nothing to do"
        self.stdout.write(self.style.SUCCESS(summary))
