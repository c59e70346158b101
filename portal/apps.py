from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from portal import checks  # noqa: F401  (registers the system checks)

        # Made when Django starts, not when settings are imported: VAR_DIR holds the SQLite
        # database and the beat schedule, the static files are served from STATIC_ROOT
        # (WhiteNoise warns when it is missing), and kombu's filesystem broker expects its
        # folders (web, worker and beat all use it; /healthz checks it). (In DEBUG, settings
        # do read, and on first use write, var/dev-field-key: the key must exist before any
        # encrypted field is read.)
        broker = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        folders = [settings.VAR_DIR, settings.STATIC_ROOT, broker.get("data_folder_in")]
        for folder in filter(None, folders):
            Path(folder).mkdir(parents=True, exist_ok=True)
