"""Hot statements (a refresh's load, lease, store and audit row), built with the ORM but
compiled once per database.

Django compiles a query afresh on every call, resolving each Case, When, F and Q and, for a
select_related load, every column of every model in it; for the load, lease and store of a
refresh that cost more CPU than the provider call and the rest of the refresh together. A
prepared statement is written with the ORM as before (the same vendor SQL, the database's
clock through Now()), with a `Slot` for each value that changes between runs: its SQL is
compiled on first use per database and kept, and each run only binds the values, prepared by
the field each slot names (tokens encrypted, datetimes and durations adapted) as the ORM
prepares them. A SELECT's rows become instances as Django's ModelIterable makes them
(from_db, then its related populators), its converters applied (an encrypted column is
decrypted when its attribute is first read: portal.fields.Sealed).
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import (
    BigIntegerField,
    CharField,
    DateTimeField,
    Expression,
    Field,
    IntegerField,
    Model,
    PositiveBigIntegerField,
    PositiveIntegerField,
    QuerySet,
    TextField,
)
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery, UpdateQuery

from portal.fields import EncryptedTextField


class _Param:
    """Where a slot's value goes in the compiled parameters, and how it is prepared."""

    __slots__ = ("field", "name", "prepare")

    def __init__(self, name: str, field: Field):
        self.name, self.field = name, field
        self.prepare = _preparer(field)


#: fields whose get_db_prep_save passes a str (or None) through unchanged
_TEXT_FIELDS = (CharField, TextField)
#: ... and adapts an int with connection.ops.adapt_integerfield_value
_INTEGER_FIELDS = (IntegerField, BigIntegerField, PositiveIntegerField, PositiveBigIntegerField)


def _preparer(field: Field) -> Callable:
    """field.get_db_prep_save(value, db), with what it does for the commonest values done
    directly: a str (or None) into a text column, an aware datetime, an int (a refresh binds
    some thirty values, and the ORM's path for each is several calls deep). Any other value
    (a str subclass such as a choice, a naive datetime), and any subclass of these fields (an
    encrypted one), takes the field's own path."""
    slow = field.get_db_prep_save
    kind = type(field)
    if kind in _TEXT_FIELDS:
        return lambda value, db: value if value is None or type(value) is str else slow(value, db)
    if kind is DateTimeField:
        return lambda value, db: (
            db.ops.adapt_datetimefield_value(value)
            if type(value) is datetime and value.tzinfo is not None
            else slow(value, db)
        )
    if kind in _INTEGER_FIELDS:
        internal = field.get_internal_type()
        return lambda value, db: (
            db.ops.adapt_integerfield_value(value, internal)
            if type(value) is int
            else slow(value, db)
        )
    return slow


class Slot(Expression):
    """A value given when the statement runs, prepared for the database as `field` prepares
    what is saved into it."""

    def __init__(self, name: str, field: Field):
        super().__init__(output_field=field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", (_Param(self.name, self.output_field),)

    def as_postgresql(self, compiler, connection):
        # Bound on the server there (see _execute), a parameter's type is inferred from its
        # context, and a NULL one in a CASE beside a NULL would be read as text: typed,
        # except text, which its context always types (and a cast to varchar(n) truncates).
        if isinstance(self.output_field, CharField | TextField):
            return self.as_sql(compiler, connection)
        cast = self.output_field.cast_db_type(connection)
        return f"%s::{cast}", (_Param(self.name, self.output_field),)


#: psycopg's prepare_threshold on a connection whose statements are prepared when asked
_NEVER_BY_COUNT = 2**31 - 1


def _execute(db, sql: str, params: list, read: Callable):
    """Run one statement on `db`; what `read` takes from its cursor (the rowcount, the rows).

    On PostgreSQL the parameters are bound on the server: psycopg's client-side binding,
    Django's default, quotes each one into the SQL text in Python, which was a tenth of a
    refresh's CPU (Django's own queries keep client-side binding; these statements'
    parameters are typed by their Slots). And one psycopg cursor is kept per database
    connection: Django makes and wraps a new one per statement, which cost about as much CPU
    as the statement's own round trip (three per refresh on PostgreSQL). What Django's wrapper
    checks is checked here too (the health check, thread sharing, a broken transaction) and
    its error classes are raised; where queries are logged or wrapped (DEBUG, assertNumQueries,
    connection.execute_wrapper), Django's own cursor runs the statement, so they see it.

    With DB_PREPARED_STATEMENTS each statement is also prepared on the server, once per
    database connection (psycopg keeps the names): PostgreSQL parsed and planned each one
    afresh, half of its CPU for a refresh (Django prepares nothing by default)."""
    if db.vendor != "postgresql" or db.queries_logged or db.execute_wrappers:
        cursor = db.cursor() if db.vendor != "postgresql" else _server_binding(db)
        with cursor:
            cursor.execute(sql, params)
            return read(cursor)
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    raw = db.connection
    cursor = getattr(raw, "_portal_prepared_cursor", None)
    if cursor is None:
        cursor = raw._portal_prepared_cursor = _server_binding_class()(raw)
        if settings.DB_PREPARED_STATEMENTS and raw.prepare_threshold is None:
            # psycopg prepares nothing, not even what is asked for, while the threshold is
            # None (Django's default): a count no query reaches keeps Django's unprepared.
            raw.prepare_threshold = _NEVER_BY_COUNT
    with db.wrap_database_errors:
        cursor.execute(sql, params, prepare=settings.DB_PREPARED_STATEMENTS)
        return read(cursor)


def _rowcount(cursor) -> int:
    return cursor.rowcount


def _rows(cursor) -> list:
    return cursor.fetchall()


def _server_binding_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    return ServerBindingCursor


def _server_binding(db):
    """Django's cursor (its query log and execute wrappers included) over a server-binding
    psycopg cursor."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(_server_binding_class()(db.connection))


def _bind(params: tuple, slots: dict, db) -> list:
    names = {p.name for p in params if isinstance(p, _Param)}
    if names != slots.keys():
        raise TypeError(f"slots {sorted(names)} expected, {sorted(slots)} given")
    return [p.prepare(slots[p.name], db) if isinstance(p, _Param) else p for p in params]


class _Prepared:
    """`build` returns a fresh queryset of `model` each time it is called: compiling sets up
    joins on the query it compiles, so each compile gets its own, under a lock."""

    def __init__(self, model: type[Model], build: Callable):
        self._model, self._build = model, build
        self._lock = threading.Lock()
        self._compiled: dict[tuple[str, str], object] = {}

    def _for(self, db, compile: Callable):
        key = (db.alias, db.vendor)
        found = self._compiled.get(key)
        if found is None:
            with self._lock:
                found = self._compiled.get(key)
                if found is None:
                    found = self._compiled[key] = compile(db, self._build())
        return found


class _PreparedWrite(_Prepared):
    def run(self, **slots) -> int:
        """The number of rows the statement wrote."""
        alias = router.db_for_write(self._model)
        db = connections[alias]
        sql, params = self._for(db, self._compile)
        bound = _bind(params, slots, db)  # a missing slot is refused before any transaction mark
        with transaction.mark_for_rollback_on_error(using=alias):
            return _execute(db, sql, bound, _rowcount)


class PreparedUpdate(_PreparedWrite):
    """An UPDATE: `build` returns the filtered queryset and the values to set (plain values,
    expressions and Slots, as QuerySet.update takes them); `run(**slots)` returns the number
    of rows it changed."""

    @staticmethod
    def _compile(db, built: tuple[QuerySet, dict]) -> tuple[str, tuple]:
        queryset, values = built
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(values)
        sql, params = query.get_compiler(connection=db).as_sql()
        return sql, tuple(params)


class PreparedInsert(_PreparedWrite):
    """An INSERT of one row of `model` setting `fields` (each a slot of its own name; a
    foreign key takes the id), returning no columns."""

    def __init__(self, model: type[Model], fields: list[str]):
        super().__init__(model, lambda: [model._meta.get_field(name) for name in fields])

    def _compile(self, db, fields: list[Field]) -> tuple[str, tuple]:
        row = self._model(**{f.attname: Slot(f.name, f) for f in fields})
        query = InsertQuery(self._model)
        query.insert_values(fields, [row])
        [(sql, params)] = query.get_compiler(connection=db).as_sql()
        return sql, tuple(params)


class PreparedUpdateWithRow:
    """An UPDATE of at most one row and, only when it changed it, a PreparedInsert's row: both
    or neither (a refresh's tokens and the event that says they were stored). On PostgreSQL
    one statement, a data-modifying WITH, which spares a round trip and the statement's CPU;
    elsewhere the two in one transaction. `run(update={...}, row={...})` takes each one's
    slots and returns the number of rows the UPDATE changed."""

    def __init__(self, update: PreparedUpdate, insert: PreparedInsert):
        self._update, self._insert = update, insert
        self._joined: dict[str, str] = {}

    def run(self, *, update: dict, row: dict) -> int:
        alias = router.db_for_write(self._update._model)
        db = connections[alias]
        if db.vendor != "postgresql":
            with transaction.atomic(using=alias):
                changed = self._update.run(**update)
                if changed:
                    self._insert.run(**row)
            return changed
        update_sql, update_params = self._update._for(db, self._update._compile)
        insert_sql, insert_params = self._insert._for(db, self._insert._compile)
        sql = self._joined.get(alias)
        if sql is None:
            into, values = insert_sql.split(" VALUES (", 1)
            # Two statements Django compiled, joined; every value stays a bound parameter.
            sql = self._joined[alias] = (
                f"WITH changed AS ({update_sql} RETURNING 1) "  # noqa: S608
                f"{into} SELECT {values.removesuffix(')')} FROM changed"
            )
        bound = _bind(update_params, update, db) + _bind(insert_params, row, db)
        with transaction.mark_for_rollback_on_error(using=alias):
            return _execute(db, sql, bound, _rowcount)


@dataclass(frozen=True)
class _Select:
    sql: str
    params: tuple
    converters: list
    start: int
    end: int
    init_list: list[str]
    populators: list
    annotations: list[tuple[str, int]]


def _sealing(converter):
    """An encrypted column's value is decrypted when its attribute is first read."""
    if getattr(converter, "__func__", None) is EncryptedTextField.from_db_value:
        return converter.__self__.sealed_from_db_value
    return converter


class PreparedSelect(_Prepared):
    """A SELECT of model instances: `build` returns the queryset (select_related and
    annotations allowed, each set on the instance as the ORM sets it; no prefetching or
    deferred fields); `run(**slots)` returns the list."""

    def run(self, **slots) -> list[Model]:
        alias = router.db_for_read(self._model)
        db = connections[alias]
        select = self._for(db, self._compile)
        rows = _execute(db, select.sql, _bind(select.params, slots, db), _rows)
        found = []
        for values in map(list, rows):
            for pos, (convs, expression) in select.converters:
                value = values[pos]
                for convert in convs:
                    value = convert(value, expression, db)
                values[pos] = value
            obj = self._model.from_db(alias, select.init_list, values[select.start : select.end])
            for populator in select.populators:
                populator.populate(values, obj)
            for name, pos in select.annotations:
                setattr(obj, name, values[pos])
            found.append(obj)
        return found

    @staticmethod
    def _compile(db, queryset: QuerySet) -> _Select:
        if queryset._prefetch_related_lookups or queryset.query.deferred_loading[0]:
            raise TypeError("a prepared select takes no prefetching or deferred fields")
        compiler = queryset.query.get_compiler(connection=db)
        sql, params = compiler.as_sql()
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        columns = [s[0] for s in select[: compiler.col_count]]
        return _Select(
            sql=sql,
            params=tuple(params),
            converters=[
                (pos, ([_sealing(c) for c in convs], expression))
                for pos, (convs, expression) in compiler.get_converters(columns).items()
            ],
            start=start,
            end=end,
            init_list=[f[0].target.attname for f in select[start:end]],
            populators=get_related_populators(klass_info, select, db.alias),
            annotations=list(compiler.annotation_col_map.items()),
        )
