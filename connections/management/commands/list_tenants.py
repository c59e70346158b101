"""`manage.py list_tenants`: every tenant, its admins, how many people and pending invitations."""

from django.core.management.base import BaseCommand
from django.db.models import Count, Q
from django.utils import timezone

from portal.models import Membership, Tenant


class Command(BaseCommand):
    help = "List the tenants with their admins, people and pending invitations."

    def handle(self, *args, **options):
        now = timezone.now()
        tenants = Tenant.objects.annotate(
            people=Count("memberships", distinct=True),
            pending=Count(
                "invitations",
                filter=Q(
                    invitations__accepted_at__isnull=True,
                    invitations__revoked_at__isnull=True,
                    invitations__expires_at__gt=now,
                ),
                distinct=True,
            ),
        ).order_by("slug")
        if not tenants:
            self.stdout.write("No tenants yet: manage.py create_tenant --help")
            return
        for tenant in tenants:
            admins = Membership.objects.filter(tenant=tenant, role=Membership.Role.ADMIN)
            names = ", ".join(
                f"{m.user.get_username()} <{m.user.email or 'no e-mail'}>"
                for m in admins.select_related("user").order_by("user__username")
            )
            self.stdout.write(
                f"{tenant.slug}\t{tenant.name}\t{tenant.people} people\t"
                f"{tenant.pending} pending invitations\tadmins: {names or 'none'}"
            )
