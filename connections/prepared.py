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
(from_db, then its related populators), its converters (decryption included) applied.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import CharField, Expression, Field, Model, QuerySet, TextField
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery, UpdateQuery


class _Param:
    """Where a slot's value goes in the compiled parameters."""

    __slots__ = ("field", "name")

    def __init__(self, name: str, field: Field):
        self.name, self.field = name, field


class Slot(Expression):
    """A value given when the statement runs, prepared for the database as `field` prepares
    what is saved into it."""

    def __init__(self, name: str, field: Field):
        super().__init__(output_field=field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", (_Param(self.name, self.output_field),)

    def as_postgresql(self, compiler, connection):
        # Bound on the server there (see _cursor), a parameter's type is inferred from its
        # context, and a NULL one in a CASE beside a NULL would be read as text: typed,
        # except text, which its context always types (and a cast to varchar(n) truncates).
        if isinstance(self.output_field, CharField | TextField):
            return self.as_sql(compiler, connection)
        cast = self.output_field.cast_db_type(connection)
        return f"%s::{cast}", (_Param(self.name, self.output_field),)


def _cursor(db):
    """Django's cursor (its error wrapping and query log included), binding parameters on the
    server on PostgreSQL: psycopg's client-side binding, Django's default, quotes each one
    into the SQL text in Python, which was a tenth of a refresh's CPU. (Django's own queries
    keep client-side binding; these statements' parameters are typed by their Slots.)"""
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(ServerBindingCursor(db.connection))


def _bind(params: tuple, slots: dict, db) -> list:
    names = {p.name for p in params if isinstance(p, _Param)}
    if names != slots.keys():
        raise TypeError(f"slots {sorted(names)} expected, {sorted(slots)} given")
    return [
        p.field.get_db_prep_save(slots[p.name], db) if isinstance(p, _Param) else p for p in params
    ]


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
        with transaction.mark_for_rollback_on_error(using=alias), _cursor(db) as cursor:
            cursor.execute(sql, bound)
            return cursor.rowcount


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


@dataclass(frozen=True)
class _Select:
    sql: str
    params: tuple
    converters: list
    start: int
    end: int
    init_list: list[str]
    populators: list


class PreparedSelect(_Prepared):
    """A SELECT of model instances: `build` returns the queryset (select_related allowed;
    no prefetching, annotations or deferred fields); `run(**slots)` returns the list."""

    def run(self, **slots) -> list[Model]:
        alias = router.db_for_read(self._model)
        db = connections[alias]
        select = self._for(db, self._compile)
        with _cursor(db) as cursor:
            cursor.execute(select.sql, _bind(select.params, slots, db))
            rows = cursor.fetchall()
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
            found.append(obj)
        return found

    @staticmethod
    def _compile(db, queryset: QuerySet) -> _Select:
        if queryset._prefetch_related_lookups or queryset.query.deferred_loading[0]:
            raise TypeError("a prepared select takes no prefetching or deferred fields")
        compiler = queryset.query.get_compiler(connection=db)
        sql, params = compiler.as_sql()
        if compiler.annotation_col_map:
            raise TypeError("a prepared select takes no annotations")
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        columns = [s[0] for s in select[: compiler.col_count]]
        return _Select(
            sql=sql,
            params=tuple(params),
            converters=list(compiler.get_converters(columns).items()),
            start=start,
            end=end,
            init_list=[f[0].target.attname for f in select[start:end]],
            populators=get_related_populators(klass_info, select, db.alias),
        )
