"""Tenant API keys: hashed at rest, shown once, revocable, never in the audit trail."""

from datetime import timedelta

import pytest
from django.db import connection as db
from django.test import RequestFactory
from django.utils import timezone

from connections import apikeys
from connections.models import AuditEvent, TenantApiKey, sha256_hex

pytestmark = pytest.mark.django_db


def test_create_returns_plaintext_once_and_stores_only_its_hash(acme, alice):
    new = apikeys.create(tenant=acme, name="billing", actor=alice)
    assert apikeys.KEY_RE.fullmatch(new.plaintext)
    assert new.plaintext.startswith(f"pk_{new.key.prefix}_")
    key = TenantApiKey.objects.get()
    assert key.key_hash == sha256_hex(new.plaintext)
    secret_part = new.plaintext.rsplit("_", 1)[-1][-20:]
    with db.cursor() as cur:
        cur.execute("SELECT * FROM connections_tenantapikey")
        rows = cur.fetchall()
    dump = repr(rows)
    assert new.plaintext not in dump
    assert secret_part not in dump


def test_events_record_create_and_revoke_without_the_key(acme, alice):
    new = apikeys.create(tenant=acme, name="billing", actor=alice)
    assert apikeys.revoke(new.key, actor=alice) is True
    assert apikeys.revoke(new.key, actor=alice) is False  # idempotent, no second event
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.kind for e in events] == ["api_key_created", "api_key_revoked"]
    secret_part = new.plaintext.rsplit("_", 1)[-1]
    for event in events:
        assert event.actor == alice
        assert secret_part not in event.message + repr(event.data)


def test_authenticate_accepts_bearer_and_x_api_key(acme, alice):
    plaintext = apikeys.create(tenant=acme, name="k", actor=alice).plaintext
    rf = RequestFactory()
    for headers in (
        {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"},
        {"HTTP_AUTHORIZATION": f"bearer   {plaintext} "},
        {"HTTP_X_API_KEY": plaintext},
    ):
        key = apikeys.authenticate(rf.get("/", **headers))
        assert key is not None and key.tenant == acme


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # right prefix, wrong secret
        lambda k: k.replace("pk_", "sk_"),
        lambda k: k + "x",
        lambda k: "",
        lambda k: f"Basic {k}",
    ],
)
def test_authenticate_rejects_wrong_keys(acme, alice, mangle):
    plaintext = apikeys.create(tenant=acme, name="k", actor=alice).plaintext
    assert apikeys.authenticate_key(mangle(plaintext)) is None


def test_revoked_key_fails(acme, alice):
    new = apikeys.create(tenant=acme, name="k", actor=alice)
    apikeys.revoke(new.key, actor=alice)
    assert apikeys.authenticate_key(new.plaintext) is None


def test_last_used_written_at_most_once_a_minute(acme, alice, django_assert_num_queries):
    new = apikeys.create(tenant=acme, name="k", actor=alice)
    apikeys.authenticate_key(new.plaintext)
    first = TenantApiKey.objects.get().last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only; no write within the minute
        apikeys.authenticate_key(new.plaintext)
    assert TenantApiKey.objects.get().last_used_at == first
    TenantApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    apikeys.authenticate_key(new.plaintext)
    assert TenantApiKey.objects.get().last_used_at > first
