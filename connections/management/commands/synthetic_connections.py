"""`manage.py synthetic_connections --tenant SLUG --count N`: made-up connections for the
demo and the benchmarks, spread over providers, statuses, owners and expiry dates.

They are written in bulk, carry no tokens, and are never refreshed: their apps ("Synthetic
<provider>") refresh on demand and their rows have no next refresh, so beat never sends a
made-up token to a provider. Progress goes to stderr.
"""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from connections import activity
from connections.models import AuditEvent, Connection, PrivateApp
from connections.providers import PROVIDERS
from portal.models import Tenant

BATCH = 5000
#: share of each status, roughly what a long-running tenant looks like
STATUS_WEIGHTS = {
    Connection.Status.ACTIVE: 86,
    Connection.Status.FAILING: 3,
    Connection.Status.NEEDS_REAUTH: 5,
    Connection.Status.REVOKED: 6,
}
ERRORS = (
    "server: the provider answered 503",
    "transport: the call timed out after 20 s",
    "rate_limited: 429, Retry-After 30",
)


class Command(BaseCommand):
    help = "Create N synthetic connections in a tenant (demo and benchmarks; never refreshed)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--create-tenant", action="store_true", help="create it if missing")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--events", type=int, default=0, help="also this many refresh events, last 7 days"
        )

    def handle(self, *args, tenant: str, count: int, create_tenant: bool, seed: int, **options):
        if count < 1 or count > 10_000_000:
            raise CommandError("--count is from 1 to 10,000,000.", returncode=2)
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None and not create_tenant:
            raise CommandError(
                f"No tenant {tenant!r} (add --create-tenant to make one).", returncode=2
            )
        if found is None:
            found = Tenant.objects.create(slug=tenant, name=tenant.replace("-", " ").title())
        rng = random.Random(seed)  # noqa: S311 - made-up data, not secrets
        apps = self._apps(found)
        owners = list(found.memberships.values_list("user_id", flat=True)) or [None]
        now = timezone.now()
        made = 0
        while made < count:
            batch = [
                self._row(found, rng, apps, owners, now, made + i)
                for i in range(min(BATCH, count - made))
            ]
            Connection.objects.bulk_create(batch)
            made += len(batch)
            self.stderr.write(f"  {made} of {count} connections")
        if options["events"]:
            self._events(found, rng, apps, options["events"], now)
            activity.roll_up(now=now, hours=activity.BACKFILL_HOURS)  # the chart shows them now
        self.stdout.write(f"{count} synthetic connections in {found.slug}")

    def _apps(self, tenant) -> list[PrivateApp]:
        apps = []
        for provider in PROVIDERS.values():
            app, _ = PrivateApp.objects.get_or_create(
                tenant=tenant,
                name=f"Synthetic {provider.name}",
                defaults={
                    "provider": provider.key,
                    "status": PrivateApp.Status.ENABLED,
                    "grant_type": provider.grants[0],
                    "client_id": f"synthetic-{provider.key}",
                    "client_auth": provider.client_auth,
                    "refresh_policy": PrivateApp.RefreshPolicy.ON_DEMAND,
                },
            )
            apps.append(app)
        return apps

    def _row(self, tenant, rng, apps, owners, now, n: int) -> Connection:
        status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
        app = rng.choice(apps)
        refreshed = now - timedelta(minutes=rng.randint(1, 60 * 24 * 3))
        failing = status == Connection.Status.FAILING
        user = app.catalogue.uses_redirect
        return Connection(
            tenant=tenant,
            app=app,
            user_id=rng.choice(owners),
            kind=Connection.Kind.USER if user else Connection.Kind.SERVICE,
            status=status,
            account_id=str(100_000 + n),
            account_name=f"Account {n:06d} Oy",
            # Service accounts have no refresh token; their access token is fresh.
            access_expires_at=refreshed + timedelta(minutes=30)
            if user
            else now + timedelta(minutes=rng.randint(1, 60)),
            refresh_expires_at=now + timedelta(hours=rng.randint(-48, 24 * 400)) if user else None,
            last_refreshed_at=refreshed,
            refresh_count=rng.randint(0, 5000),
            failure_count=rng.randint(1, 6) if failing else 0,
            last_error=rng.choice(ERRORS) if failing else "",
            revoke_retry_at=(
                now + timedelta(minutes=rng.randint(1, 600))
                if status == Connection.Status.REVOKED and rng.random() < 0.1
                else None
            ),
        )

    def _events(self, tenant, rng, apps, n: int, now) -> None:
        kinds = [AuditEvent.Kind.REFRESHED] * 19 + [AuditEvent.Kind.REFRESH_FAILED]
        for start in range(0, n, BATCH):
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    tenant=tenant,
                    app=rng.choice(apps),
                    kind=rng.choice(kinds),
                    message="synthetic",
                    created_at=now - timedelta(seconds=rng.randint(0, 7 * 86400)),
                )
                for _ in range(min(BATCH, n - start))
            )
            self.stderr.write(f"  {min(n, start + BATCH)} of {n} events")
