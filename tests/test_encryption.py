import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from connections.models import PrivateApp
from portal.fields import DecryptionError


def raw_row(table: str, pk: int) -> str:
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return repr(cur.fetchone())


@pytest.fixture
def app(acme):
    return PrivateApp.objects.create(
        tenant=acme,
        name="ERP",
        provider="manhattan_active",
        grant_type="password",
        client_id="cid",
        service_username="svc-user",
        service_password="hunter2-plaintext",
    )


def test_plaintext_never_reaches_the_database(app):
    row = raw_row("connections_privateapp", app.pk)
    assert "hunter2-plaintext" not in row
    assert "svc-user" not in row
    assert PrivateApp.objects.get(pk=app.pk).service_password == "hunter2-plaintext"


def test_old_keys_still_decrypt_after_rotation_and_reencrypt_drops_them(app, settings):
    old = settings.FIELD_ENCRYPTION_KEYS
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old]
    assert PrivateApp.objects.get(pk=app.pk).service_password == "hunter2-plaintext"

    call_command("reencrypt_fields", stdout=open("/dev/null", "w"))
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert PrivateApp.objects.get(pk=app.pk).service_password == "hunter2-plaintext"


def test_a_wrong_key_raises_instead_of_returning_ciphertext(app, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError):
        PrivateApp.objects.get(pk=app.pk)
