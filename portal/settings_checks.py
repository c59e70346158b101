"""Start-up checks that refuse an unsafe production configuration with a clear message."""

from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


def check_production_settings(
    *, debug: bool, secret_key: str, default_secret_key: str, field_keys: list[str]
) -> None:
    for key in field_keys:
        try:
            Fernet(key)
        except ValueError as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe "
                "base64 bytes). Generate one with: python manage.py generate_field_key"
            ) from exc
    if debug:
        return
    if not secret_key or secret_key == default_secret_key:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off and the default SECRET_KEY. Set SECRET_KEY in the "
            "environment to a long random value."
        )
    if not field_keys:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off and no FIELD_ENCRYPTION_KEYS: secrets and tokens "
            "would have no key. Generate one with: python manage.py generate_field_key"
        )


def dev_field_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()
