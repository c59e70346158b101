from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.models import Membership, Tenant

DEMO_PASSWORD = "demo-admin-pass"


class Command(BaseCommand):
    help = (
        "Development only (DEBUG on): create (or keep) the demo tenant, its admin, and one "
        "sandbox app per provider."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "Refusing to create the demo data with DEBUG off: it makes a superuser 'admin' "
                f"with the published password '{DEMO_PASSWORD}'. Run it in development only "
                "(DEBUG=true); in production create users with `manage.py createsuperuser`."
            )
        User = get_user_model()
        with transaction.atomic():
            tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo Company"})
            admin, created = User.objects.get_or_create(
                username="admin", defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                admin.set_password(DEMO_PASSWORD)
                admin.save()
            Membership.objects.get_or_create(
                user=admin, tenant=tenant, defaults={"role": Membership.Role.ADMIN}
            )
            # The sandbox is imported only when it is installed (SANDBOX_ENABLED).
            if apps.is_installed("sandbox"):
                from sandbox.demo import create_demo_apps

                for app in create_demo_apps(tenant=tenant, user=admin):
                    self.stdout.write(f"  demo app: {app.name} ({app.get_status_display()})")
                    if app.catalogue.receives_webhooks:
                        # The sandbox provider signs and posts one to the app's inbound URL.
                        self.stdout.write(
                            f"    send it a webhook: manage.py sandbox_webhook --app {app.pk}"
                        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {settings.PORTAL_BASE_URL}/login/  user: admin  password: {DEMO_PASSWORD}"
                + ("" if created else " (unchanged since it was first created)")
            )
        )
