from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.fields import DecryptionError, encrypted_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column with the newest key in FIELD_ENCRYPTION_KEYS, so an "
        "old key can then be removed."
    )

    def handle(self, *args, **options):
        total = 0
        for model, names in encrypted_fields():
            label = model._meta.label
            pks = list(model._default_manager.values_list("pk", flat=True))
            self.stdout.write(f"{label}: {len(pks)} rows ({', '.join(names)})")
            for done, pk in enumerate(pks, start=1):
                with transaction.atomic():
                    try:
                        row = model._default_manager.select_for_update().only(*names).get(pk=pk)
                    except DecryptionError as exc:
                        raise CommandError(
                            f"{label} #{pk}: {exc} Nothing more was changed."
                        ) from exc
                    except model.DoesNotExist:
                        continue
                    model._default_manager.filter(pk=pk).update(
                        **{n: getattr(row, n) for n in names}
                    )
                if done % 500 == 0 or done == len(pks):
                    self.stdout.write(f"  {done}/{len(pks)}")
                total += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} rows with the newest key."))
