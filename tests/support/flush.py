"""Emptying PostgreSQL after a transactional test with DELETE instead of TRUNCATE.

After every test marked django_db(transaction=True), and every test on the live server,
Django's flush empties every table with one `TRUNCATE t1, t2, ...`. TRUNCATE gives each of the
~40 tables, their ~170 indexes and their TOAST tables new files: about 0.3 s a test, more than
a minute over the suite's 250 such tests. At that point the tables hold a handful of rows, and
deleting them takes a few milliseconds.

The outcome is the same: every table empty, in one transaction; sequences are left as they
were, as Django's flush leaves them (it restarts them only when asked to: such a flush, or one
with CASCADE, keeps Django's TRUNCATE). The locking is TRUNCATE's too: every table is locked
ACCESS EXCLUSIVE first, so a transaction still open elsewhere (a live-server thread, a worker)
ends before the rows are deleted, and its rows go with the rest instead of being left for the
next test. Django creates foreign keys DEFERRABLE INITIALLY DEFERRED, so the order of the
DELETEs does not matter: the keys are checked at commit, when no row is left.
"""

from django.db.backends.postgresql.operations import DatabaseOperations

_truncate = DatabaseOperations.sql_flush


def _delete_all(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if not tables or reset_sequences or allow_cascade:
        return _truncate(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    names = [style.SQL_FIELD(self.quote_name(table)) for table in tables]
    return [
        f"{style.SQL_KEYWORD('LOCK TABLE')} {', '.join(names)} "
        f"{style.SQL_KEYWORD('IN ACCESS EXCLUSIVE MODE')};",
        *(f"{style.SQL_KEYWORD('DELETE FROM')} {name};" for name in names),
    ]


def install() -> None:
    DatabaseOperations.sql_flush = _delete_all


def uninstall() -> None:
    DatabaseOperations.sql_flush = _truncate
