"""Queries of the hot paths, compiled once per database connection and reused with new parameters.

Building a query's SQL costs Django 100-400 microseconds, ten times what SQLite takes to run it; the
queries every event runs (was this event seen before, which task does it name, which service does a
trigger name, who is next in a lane) differ from event to event only in their parameters. A Prepared
query is written as an ordinary QuerySet with exact lookups on its arguments (anything else is refused
when it is compiled). The first call on a connection compiles it with placeholder
values, which show where each argument goes; later calls run the same SQL with the arguments, and make
model instances from the rows the way Django's own iterator does (converters, select_related, annotations).
`save()` does the same for the INSERTs and UPDATEs of those paths.

On PostgreSQL both also prepare their statements on the server (once per connection): parsing a statement
of a hundred columns costs PostgreSQL more than running it, and a prepared one is parsed once. Planning it
costs more again (0.6 ms for the task lock's three-table join against 0.1 ms to run it): after five calls
PostgreSQL keeps one plan for all calls when that plan is no worse than those made for each call's values
(plan_cache_mode=auto, its default). The values a query fixes itself are written into its SQL, so that
plan still meets the partial indexes they select.
"""

import re
from datetime import datetime
from itertools import count

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models
from django.db.models.base import ModelState
from django.db.models.query import get_related_populators
from django.db.models.signals import post_init, post_save, pre_init, pre_save
from django.db.transaction import TransactionManagementError

_placeholders = count(1)


class Prepared:
    """A QuerySet-building function of a few arguments (their types given), compiled once per connection.

    `prepared(*args)` returns the model instances; with `values=True`, the rows as tuples (for
    `.values_list()` querysets)."""

    def __init__(self, build, *types, values: bool = False):
        self.build, self.types, self.values = build, types, values
        self.key = f"bosun-prepared-{next(_placeholders)}"

    def __call__(self, *args) -> list:
        connection = connections[DEFAULT_DB_ALIAS]  # this thread's, once (the proxy costs a look-up per use)
        compiled = _compiled(connection)
        plan = compiled.get(self.key)
        if plan is None:
            plan = compiled[self.key] = self._compile(connection)
        sql, slots, compiler, converters, make = plan
        if compiler.query.select_for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with _cursor(connection) as cursor:
            cursor.execute(sql, [args[i] if i is not None else fixed for i, fixed in slots])
            rows = cursor.fetchall()
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        return rows if make is None else [make(row) for row in rows]

    def _compile(self, connection):
        """Compile with a placeholder per argument, then see where each one landed among the parameters."""
        placeholders = []
        for kind in self.types:
            n = next(_placeholders)
            placeholders.append(-7_000_000_000 - n if kind is int else f"\x1fbosun-placeholder-{n}\x1f")
        queryset = self.build(*placeholders)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        # (argument index, None) where an argument goes; (None, value) for a value the query fixes itself
        slots = [(placeholders.index(p), None) if p in placeholders else (None, p) for p in params]
        lost = [i for i, p in enumerate(placeholders) if p not in params]
        if lost:  # e.g. __startswith turns the argument into 'x%': the SQL would hold the placeholder itself
            raise ValueError(f"Prepared query: argument {lost[0]} does not reach the SQL's parameters unchanged; "
                             "use exact lookups only (a lookup that transforms its argument cannot be prepared).")
        if _preparing(connection):
            sql, slots = _inline_fixed(sql, slots)
        columns = [s[0] for s in compiler.select[0:compiler.col_count]]
        converters = compiler.get_converters(columns)
        return sql, slots, compiler, converters, None if self.values else _maker(compiler)


_PARAMETER = re.compile(r"%%|%s")


def _inline_fixed(sql: str, slots: list) -> tuple[str, list]:
    """The SQL with each value the query fixes itself (a state, a flag) written into it, and the slots left.

    A prepared statement's plan is made once for all its calls (a generic plan) once PostgreSQL sees it is no
    worse than one made for each call's values, and planning costs more than running these statements.
    A generic plan knows only what the SQL says: with `state = 'waiting'` or `holds_lane = true` in the text,
    a partial index on those values still serves it; with `state = $2` it could not."""
    values = iter(slots)
    kept = []

    def written(match):
        if match.group() == "%%":
            return "%%"
        slot = next(values)
        index, value = slot
        if index is None and type(value) in (bool, int, str):
            return _literal(value)
        kept.append(slot)
        return "%s"

    return _PARAMETER.sub(written, sql), kept


def _literal(value) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def _maker(compiler):
    """Rows to model instances, as django.db.models.query.ModelIterable does it."""
    db = compiler.connection.alias
    select, klass_info, annotations = compiler.select, compiler.klass_info, compiler.annotation_col_map
    model = klass_info["model"]
    fields = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    names = [f[0].target.attname for f in select[start:end]]
    related = get_related_populators(klass_info, select, db)
    build = _builder(model, db, names)

    def make(row):
        instance = build(row[start:end])
        for populator in related:
            populator.populate(row, instance)
        for name, position in (annotations or {}).items():
            setattr(instance, name, row[position])
        return instance

    return make


def _builder(model, db, names):
    """`model.from_db(db, names, values)`, without Model.__init__'s argument handling when every field is
    there and nobody listens for the model's init signals: the values go straight into the instance."""
    if (names != [f.attname for f in model._meta.concrete_fields]
            or pre_init.has_listeners(model) or post_init.has_listeners(model)):
        return lambda values: model.from_db(db, names, values)
    new = model.__new__

    def build(values):
        instance = new(model)
        instance.__dict__.update(zip(names, values))
        state = instance._state = ModelState()
        state.adding, state.db = False, db
        return instance

    return build


def save(instance, update_fields=None) -> None:
    """`instance.save(update_fields=...)` for the models the hot paths write, with its SQL made once per
    connection for each model and set of fields. A model with pre- or post-save receivers is saved by
    Django itself."""
    model = type(instance)
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        instance.save(update_fields=update_fields)
        return
    meta = instance._meta
    instance._prepare_related_fields_for_save(operation_name="save")
    adding = instance.pk is None
    connection = connections[DEFAULT_DB_ALIAS]
    compiled = _compiled(connection)
    key = (meta.label, adding, tuple(update_fields or ()))
    plan = compiled.get(key)
    if plan is None:
        plan = compiled[key] = _write_plan(connection, meta, adding, update_fields)
    sql, preparers = plan
    values = [prepare(instance, adding) for prepare in preparers]
    with _cursor(connection) as cursor:
        if adding:
            cursor.execute(sql, values)
            pk = cursor.fetchone()[0] if connection.features.can_return_columns_from_insert else cursor.lastrowid
            setattr(instance, meta.pk.attname, pk)
        else:
            cursor.execute(sql, [*values, meta.pk.get_db_prep_value(instance.pk, connection)])
            if cursor.rowcount != 1:
                raise DatabaseError(f"{meta.label} {instance.pk} was not saved: no such row.")
    instance._state.adding = False
    instance._state.db = connection.alias


def insert_all(instances: list) -> None:
    """New rows of one model in one INSERT, in the order given (their ids ascend in that order), each
    instance given its id: as save() does one by one, in one statement."""
    if len(instances) == 1:
        save(instances[0])
        return
    model = type(instances[0])
    connection = connections[DEFAULT_DB_ALIAS]
    if (pre_save.has_listeners(model) or post_save.has_listeners(model)
            or not connection.features.can_return_rows_from_bulk_insert
            or not connection.features.can_return_columns_from_insert):
        for instance in instances:
            save(instance)
        return
    meta = model._meta
    for instance in instances:
        instance._prepare_related_fields_for_save(operation_name="save")
    compiled = _compiled(connection)
    key = (meta.label, "insert", len(instances))
    plan = compiled.get(key)
    if plan is None:
        sql, preparers = _write_plan(connection, meta, True, None)
        head, _, returning = sql.partition(" RETURNING ")
        row = head[head.index(" VALUES ") + len(" VALUES "):]
        head = head[:head.index(" VALUES ")]
        plan = compiled[key] = (f"{head} VALUES {', '.join([row] * len(instances))} RETURNING {returning}",
                                preparers)
    sql, preparers = plan
    values = [prepare(instance, True) for instance in instances for prepare in preparers]
    with _cursor(connection) as cursor:
        cursor.execute(sql, values)
        ids = sorted(row[0] for row in cursor.fetchall())
    for instance, pk in zip(instances, ids):
        setattr(instance, meta.pk.attname, pk)
        instance._state.adding = False
        instance._state.db = connection.alias


def fetch_one(sql: str, params: list):
    """The first row of a statement written by hand, prepared on PostgreSQL as the queries above are (write
    into the SQL what does not change from call to call, so one plan serves every call)."""
    with _cursor(connections[DEFAULT_DB_ALIAS]) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _preparing(connection) -> bool:
    return connection.vendor == "postgresql" and settings.BOSUN_PG_PREPARE


def _cursor(connection):
    """Django's cursor (its query log, execute wrappers and errors as ever); on PostgreSQL over a psycopg
    cursor that binds on the server and prepares what it runs."""
    if not _preparing(connection):
        return connection.cursor()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:  # Django turns preparing off (None): psycopg then prepares nothing at all
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_preparing_cursor()(raw))


# Django's own cursors bind on the client and never prepare; psycopg prepares a statement of a cursor that
# binds on the server once it has run this many times, or at once when asked (as _Preparing asks).
_ONLY_WHEN_ASKED = 2**31 - 1


def _preparing_cursor():
    global _Preparing
    if _Preparing is None:
        import psycopg

        class _Preparing(psycopg.Cursor):
            def execute(self, query, params=None, **kwargs):
                return super().execute(query, params, prepare=True, **kwargs)
    return _Preparing


_Preparing = None


def _compiled(connection) -> dict:
    """What has been compiled on this connection (a thread's own), by key."""
    compiled = getattr(connection, "bosun_prepared", None)
    if compiled is None:
        compiled = connection.bosun_prepared = {}
    return compiled


def _write_plan(connection, meta, adding: bool, update_fields):
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    if adding:
        fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
        sql = (f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        if connection.features.can_return_columns_from_insert:
            sql += f" RETURNING {quote(meta.pk.column)}"
        return sql, [_preparer(f, connection) for f in fields]
    if update_fields:
        fields = [meta.get_field(name) for name in update_fields]
    else:
        fields = [f for f in meta.local_concrete_fields if not f.primary_key]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    return (f"UPDATE {table} SET {assignments} WHERE {quote(meta.pk.column)} = %s",
            [_preparer(f, connection) for f in fields])


_DEFERRED = object()  # a field not loaded: Django's own way loads it

# Values that these kinds of field pass to the database unchanged (a foreign key: its target's id)
_AS_THEY_ARE = [
    ((models.CharField, models.TextField), (str,)),
    ((models.IntegerField, models.ForeignKey), (int,)),
    ((models.BooleanField,), (bool,)),
    ((models.FloatField,), (float,)),
]


def _preparer(field, connection):
    """`field.get_db_prep_save(field.pre_save(instance, adding))`, with a short cut for the common values:
    None and plain strings, numbers and booleans as they are, an aware datetime adapted by the backend.
    Anything else takes Django's own way."""
    attname = field.attname

    def full(instance, adding):
        return field.get_db_prep_save(field.pre_save(instance, adding), connection=connection)

    if isinstance(field, models.DateTimeField):
        if field.auto_now or field.auto_now_add:
            return full
        adapt = connection.ops.adapt_datetimefield_value

        def prepare_datetime(instance, adding):
            value = instance.__dict__.get(attname, _DEFERRED)
            if value is None:
                return None
            if type(value) is datetime and value.tzinfo is not None:
                return adapt(value)
            return full(instance, adding)

        return prepare_datetime
    kinds = next((types for classes, types in _AS_THEY_ARE if isinstance(field, classes)), None)
    if kinds is None or type(field).pre_save is not models.Field.pre_save:
        return full

    def prepare(instance, adding):
        value = instance.__dict__.get(attname, _DEFERRED)
        if value is None or type(value) in kinds:
            return value
        return full(instance, adding)

    return prepare
