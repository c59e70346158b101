"""The refresh path's prepared statements (connections/prepared.py) behave like the
ORM queries they replace: values prepared by their fields (tokens encrypted), rows converted
(tokens decrypted) with their related objects, the database's clock for leases; on SQLite
and PostgreSQL alike (CI runs both)."""

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import IntegrityError
from django.db import connection as database
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from connections import audit
from connections.lifecycle import lease, provider_calls
from connections.lifecycle.store import Stored, store_answer
from connections.models import AuditEvent, ClientSecret, Connection
from connections.oauth import TokenSet
from connections.prepared import (
    PreparedSelect,
    PreparedUpdate,
    PreparedUpdateWithRow,
    Slot,
    _Param,
)
from portal.fields import DecryptionError, Sealed, decrypt
from tests import factories


@pytest.fixture
def conn(acme):
    app = factories.app(acme)
    return factories.connection(
        app, access_token="access-plain", refresh_token="refresh-plain-1", scope="read"
    )


def raw(column: str, pk: int):
    with database.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM connections_connection WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_a_load_decrypts_the_tokens_and_brings_the_app_and_tenant(conn, django_assert_num_queries):
    with django_assert_num_queries(1):
        loaded = lease.load(conn.pk)
        assert (loaded.app.name, loaded.tenant.name) == (conn.app.name, conn.tenant.name)
    assert (loaded.access_token, loaded.refresh_token) == ("access-plain", "refresh-plain-1")
    assert loaded.access_expires_at == conn.access_expires_at  # an aware datetime
    assert loaded._state.adding is False and loaded._state.db == "default"


def test_a_prepared_selects_annotations_are_set_on_its_rows(conn):
    select = PreparedSelect(
        Connection,
        lambda: Connection.objects.filter(pk=Slot("id", Connection._meta.get_field("id")))
        .select_related("app")
        .annotate(twice=F("version") * 2 + 1),
    )
    [row] = select.run(id=conn.pk)
    assert (row.twice, row.app.pk) == (conn.version * 2 + 1, conn.app_id)


@pytest.mark.skipif(database.vendor != "postgresql", reason="secrets join the load on PostgreSQL")
def test_a_load_brings_the_apps_active_secrets_in_order_for_its_next_call_only(
    conn, django_assert_num_queries
):
    app = conn.app
    now = timezone.now()
    made = [
        ClientSecret.objects.create(
            app=app, value=f"secret-number-{n}-abcdefgh", last_four=f"{n}fgh", **fields
        )
        for n, fields in enumerate(
            [
                {"is_primary": True, "created_at": now - timedelta(days=2)},
                {"created_at": now - timedelta(days=1), "rejected_at": now},
                {"created_at": now, "revoked_at": now},  # revoked: never tried
                {"created_at": now - timedelta(hours=1), "label": "spare"},
            ]
        )
    ]
    expected = list(ClientSecret.active_of(app))
    assert len(expected) == 3 and made[2] not in expected

    with django_assert_num_queries(1):
        loaded = lease.load(conn.pk)
        rows = provider_calls._secret_rows(loaded.app)
        assert [(s.pk, s.value, s.masked, s.rejected_at, s.label) for s in rows] == [
            (s.pk, s.value, s.masked, s.rejected_at, s.label) for s in expected
        ]
        assert all(s.app is loaded.app and s._state.db == "default" for s in rows)

    ClientSecret.objects.filter(pk=expected[0].pk).update(revoked_at=now)
    with django_assert_num_queries(1):  # a later call reads them afresh
        assert [s.pk for s in provider_calls._secret_rows(loaded.app)] == [
            s.pk for s in expected[1:]
        ]


def test_a_load_decrypts_each_token_when_it_is_first_read(conn):
    loaded = lease.load(conn.pk)
    assert type(loaded.__dict__["access_token"]) is Sealed  # not decrypted yet
    assert loaded.refresh_token == "refresh-plain-1"
    assert type(loaded.__dict__["access_token"]) is Sealed
    assert loaded.access_token == "access-plain"
    assert loaded.__dict__["access_token"] == "access-plain"  # decrypted once
    loaded.access_token = "changed"
    assert loaded.access_token == "changed"


def test_a_token_no_key_opens_raises_when_read_never_shows_ciphertext(conn, settings):
    loaded = lease.load(conn.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError):
        loaded.refresh_token  # noqa: B018 - reading it is the point


def _renamer() -> PreparedUpdate:
    return PreparedUpdate(
        Connection,
        lambda: (
            Connection.objects.filter(pk=Slot("id", Connection._meta.pk)),
            {"account_name": Slot("name", Connection._meta.get_field("account_name"))},
        ),
    )


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as a worker runs them
def test_statements_raise_djangos_errors_and_run_again_after_one_and_a_reconnect(conn):
    rename = _renamer()
    with pytest.raises(IntegrityError):
        rename.run(id=conn.pk, name=None)  # NOT NULL
    assert rename.run(id=conn.pk, name="After an error") == 1
    database.close()  # as Django does with a connection past CONN_MAX_AGE
    assert rename.run(id=conn.pk, name="After a reconnect") == 1
    assert lease.load(conn.pk).account_name == "After a reconnect"


def test_a_query_log_sees_the_statements(conn, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert _renamer().run(id=conn.pk, name="Logged") == 1
        lease.load(conn.pk)


def test_loading_a_connection_that_is_gone_raises_does_not_exist(db):
    with pytest.raises(Connection.DoesNotExist):
        lease.load(987654)


def test_the_store_writes_new_tokens_encrypted_and_releases_the_lease(conn):
    loaded = lease.load(conn.pk)
    assert lease.acquire(loaded, owner="me")
    tokens = TokenSet(
        access_token="access-plain-2",
        token_type="Bearer",
        refresh_token="refresh-plain-2",
        expires_in=60,
        scope="",
        request_id="",
    )
    stored = store_answer(
        conn=loaded, tokens=tokens, sent_hash=loaded.refresh_token_hash, owner="me"
    )
    assert stored == Stored.STORED
    assert "refresh-plain-2" not in raw("refresh_token", conn.pk)
    assert "access-plain-2" not in raw("access_token", conn.pk)
    fresh = lease.load(conn.pk)
    assert (fresh.access_token, fresh.refresh_token) == ("access-plain-2", "refresh-plain-2")
    assert (fresh.lease_owner, fresh.lease_expires_at, fresh.version) == ("", None, 2)
    assert fresh.scope == "read"  # an answer without a scope keeps the one granted
    assert fresh.refresh_count == conn.refresh_count + 1


def test_a_lease_runs_on_the_database_clock(conn):
    loaded = lease.load(conn.pk)
    assert lease.acquire(loaded, owner="me")
    lasting = Connection.objects.filter(pk=conn.pk, lease_expires_at__gt=Now()).exists()
    assert lasting
    expires = Connection.objects.get(pk=conn.pk).lease_expires_at
    assert abs(expires - timezone.now()) < timedelta(hours=1)


def test_a_statement_run_without_all_its_values_refuses(conn):
    rename = _renamer()
    with pytest.raises(TypeError, match="slots"):
        rename.run(id=conn.pk)
    assert rename.run(id=conn.pk, name="Renamed") == 1
    assert Connection.objects.get(pk=conn.pk).account_name == "Renamed"


def test_an_audit_row_is_written_whole(conn, alice):
    audit.record(
        AuditEvent.Kind.REFRESHED,
        tenant=conn.tenant,
        connection=conn,
        actor=alice,
        message="Tokens renewed (scheduled).",
        request_id="req-1",
        rotated=True,
        reason="scheduled",
    )
    event = AuditEvent.objects.get(connection=conn, kind=AuditEvent.Kind.REFRESHED)
    assert (event.tenant_id, event.app_id, event.actor_id) == (
        conn.tenant_id,
        conn.app_id,
        alice.pk,
    )
    assert (event.message, event.request_id) == ("Tokens renewed (scheduled).", "req-1")
    assert event.data == {"rotated": True, "reason": "scheduled"}
    assert abs(event.created_at - timezone.now()) < timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)  # the failing half must roll back the whole
def test_an_update_with_its_row_writes_both_or_neither(conn):
    renamed = PreparedUpdateWithRow(_renamer(), audit.ROW)
    event = audit.row(AuditEvent.Kind.REFRESHED, tenant=conn.tenant, connection=conn, message="m")

    assert renamed.run(update={"id": conn.pk, "name": "Both"}, row=event) == 1
    assert Connection.objects.get(pk=conn.pk).account_name == "Both"
    assert AuditEvent.objects.filter(connection=conn).count() == 1

    assert renamed.run(update={"id": 987654, "name": "None"}, row=event) == 0  # no row changed
    assert AuditEvent.objects.filter(connection=conn).count() == 1

    with pytest.raises(IntegrityError):  # the row cannot be written: nor is the update
        renamed.run(update={"id": conn.pk, "name": "Neither"}, row={**event, "kind": None})
    assert Connection.objects.get(pk=conn.pk).account_name == "Both"
    assert AuditEvent.objects.filter(connection=conn).count() == 1


def test_each_value_is_prepared_as_its_field_prepares_it(db):
    field = Connection._meta.get_field
    aware, naive = timezone.now(), timezone.now().replace(tzinfo=None)
    cases = [
        (field("account_name"), ["Acme", "", None, Connection.Status.ACTIVE, 5]),
        (field("scope"), ["read write", None]),
        (field("next_refresh_at"), [aware, None]),
        (field("refresh_count"), [3, None, "7", True]),
        (field("access_token"), ["secret-token", None]),  # encrypted: its own path
    ]
    for model_field, values in cases:
        param = _Param("x", model_field)
        for value in values:
            expected = model_field.get_db_prep_save(value, database)
            got = param.prepare(value, database)
            if model_field.name == "access_token" and value is not None:
                # Encrypted afresh each time (a new nonce): both open to the same plaintext.
                assert decrypt(got) == decrypt(expected) == value
                continue
            assert (got, type(got)) == (expected, type(expected)), (model_field.name, value)
    # A naive datetime still goes the field's way: made aware, with the ORM's warning.
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        got = _Param("x", field("next_refresh_at")).prepare(naive, database)
    assert got == field("next_refresh_at").get_db_prep_save(
        timezone.make_aware(naive), database
    )


@pytest.mark.skipif(database.vendor != "postgresql", reason="server-side prepared statements")
@pytest.mark.django_db(transaction=True)  # the session's prepared statements are looked at
def test_hot_statements_are_prepared_on_the_server_once_per_connection(conn, settings):
    def prepared_loads() -> int:
        with database.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['SELECT "connections_connection"."id"%'],
            )
            return cursor.fetchone()[0]

    database.close()
    for _ in range(3):
        lease.load(conn.pk)
    assert prepared_loads() == 1  # prepared on first use, then only executed

    settings.DB_PREPARED_STATEMENTS = False
    database.close()
    lease.load(conn.pk)
    assert prepared_loads() == 0
