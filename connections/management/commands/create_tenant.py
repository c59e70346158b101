"""`manage.py create_tenant`: a tenant and its first admin, on a fresh production install.

By default the admin gets an invitation link (printed, valid 7 days, single-use: they choose
their username and password). With --password-stdin the admin account is made at once, the
password read from standard input (never from an argument, which `ps` and shell history see).
"""

import sys

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug
from django.db import transaction

from connections import people
from portal.models import Membership, Tenant


class Command(BaseCommand):
    help = "Create a tenant and its first admin (an invitation link, or a password from stdin)."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True, help="the tenant's URL name: acme")
        parser.add_argument("--name", required=True, help='the display name: "Acme Oy"')
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-username", help="with --password-stdin")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the admin's password from stdin"
        )

    def handle(self, *args, slug, name, admin_email, admin_username, password_stdin, **opts):
        try:
            validate_slug(slug)
            validate_email(admin_email)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages), returncode=2) from None
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with the slug {slug!r} exists already.", returncode=2)
        if password_stdin:
            self._with_password(slug, name, admin_email, admin_username)
            return
        with transaction.atomic():
            tenant = Tenant.objects.create(slug=slug, name=name)
            issued = people.invitation_create(
                tenant=tenant, email=admin_email, role=Membership.Role.ADMIN, actor=None, send=False
            )
        self.stdout.write(f"Tenant {slug} created. Send this link to {admin_email}:")
        self.stdout.write(issued.url)
        self.stderr.write("It works once, for 7 days, for a new account or one with that e-mail.")

    def _with_password(self, slug, name, email, username):
        if not username:
            raise CommandError("--password-stdin needs --admin-username.", returncode=2)
        password = sys.stdin.readline().rstrip("\n")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"The username {username!r} is taken.", returncode=2)
        try:
            password_validation.validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages), returncode=2) from None
        with transaction.atomic():
            tenant = Tenant.objects.create(slug=slug, name=name)
            user = User.objects.create_user(username=username, email=email, password=password)
            Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.ADMIN)
        self.stdout.write(f"Tenant {slug} created; {username} is its admin. Sign in at /login/.")
