"""Encryption at rest: a text field sealed with MultiFernet, keys from FIELD_ENCRYPTION_KEYS.

django-cryptography 1.1 fails to import on Django 5 and its forks keep one key with no
rotation, so this small field stands in. The newest key (first) encrypts; every key decrypts;
a value no key can open raises instead of leaking ciphertext to the caller.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.dispatch import receiver


class DecryptionError(Exception):
    """No configured key opens the stored value: a key was dropped before re-encryption."""


@cache
def _fernet() -> MultiFernet:
    keys = settings.FIELD_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: nothing can be encrypted.")
    return MultiFernet([Fernet(k) for k in keys])


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        ) from exc


class Sealed:
    """A stored value not decrypted yet: the field's attribute opens it when first read. Only
    the hot prepared loads (connections.prepared) make these: a refresh reads one or two of
    the seven encrypted columns its load brings, and each Fernet decryption costs about as
    much as a small query's binding."""

    __slots__ = ("token",)

    def __init__(self, token: str):
        self.token = token

    def __repr__(self) -> str:
        return "<sealed>"


class _OpenOnRead(DeferredAttribute):
    """A data descriptor (it has __set__), so that reads come here even when the instance's
    __dict__ holds the value, as it does once loaded."""

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance, cls=None):
        value = super().__get__(instance, cls)
        if type(value) is Sealed:
            value = instance.__dict__[self.field.attname] = decrypt(value.token)
        return value


class EncryptedTextField(models.TextField):
    """Holds plaintext in Python and a Fernet token in the database; NULL stays NULL."""

    descriptor_class = _OpenOnRead

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def sealed_from_db_value(self, value, expression, connection):
        """As from_db_value, decrypted only when the attribute is read (see Sealed)."""
        return None if value is None else Sealed(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)

    def get_lookup(self, lookup_name):
        # Ciphertext is randomised, so only IS NULL can mean anything in a query.
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found
