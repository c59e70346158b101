from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from portal import checks  # noqa: F401  (registers the system checks)

        # Made when Django starts, not when settings are imported: VAR_DIR holds the SQLite
        # database and the beat schedule, and the static files are served from STATIC_ROOT
        # (WhiteNoise warns when it is missing). (In DEBUG, settings do read, and on first use
        # write, var/dev-field-key: the key must exist before any encrypted field is read.)
        for folder in (settings.VAR_DIR, settings.STATIC_ROOT):
            Path(folder).mkdir(parents=True, exist_ok=True)
