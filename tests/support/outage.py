"""The database refusing the portal's writes, for real: triggers on the portal's own tables
raise while a flag row exists, on PostgreSQL and SQLite alike.

Every process sees it at once (workers included), reads keep working, and the sandbox's own
tables are untouched, so the emulated provider goes on answering while the portal cannot store
what it answered.
"""

from contextlib import contextmanager

from django.db import connection

TABLES = ("connections_connection", "connections_auditevent")
FLAG = "test_write_outage"


def _install() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {FLAG} (id integer PRIMARY KEY)")
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""CREATE OR REPLACE FUNCTION {FLAG}_refuse() RETURNS trigger AS $$
                BEGIN
                  IF EXISTS (SELECT 1 FROM {FLAG}) THEN
                    RAISE EXCEPTION 'writes refused (test outage)';
                  END IF;
                  RETURN COALESCE(NEW, OLD);
                END $$ LANGUAGE plpgsql"""
            )
            for table in TABLES:
                cursor.execute(f"DROP TRIGGER IF EXISTS {FLAG}_{table} ON {table}")
                cursor.execute(
                    f"CREATE TRIGGER {FLAG}_{table} BEFORE INSERT OR UPDATE OR DELETE "
                    f"ON {table} FOR EACH ROW EXECUTE FUNCTION {FLAG}_refuse()"
                )
            return
        for table in TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                cursor.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {FLAG}_{table}_{event.lower()} "
                    f"BEFORE {event} ON {table} "
                    f"WHEN EXISTS (SELECT 1 FROM {FLAG}) "
                    "BEGIN SELECT RAISE(ABORT, 'writes refused (test outage)'); END"
                )


def refuse_writes() -> None:
    _install()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FLAG}")
        cursor.execute(f"INSERT INTO {FLAG} (id) VALUES (1)")


def accept_writes() -> None:
    _install()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FLAG}")


@contextmanager
def writes_refused():
    refuse_writes()
    try:
        yield
    finally:
        accept_writes()
