from django.core.management.base import BaseCommand

from portal.keys import HELP, new_field_key


class Command(BaseCommand):
    # `manage.py generate_field_key` itself runs portal.keys without loading settings
    # (manage.py); this command is what call_command and `manage.py help` see.
    help = HELP
    requires_system_checks = []

    def handle(self, *args, **options):
        self.stdout.write(new_field_key())
