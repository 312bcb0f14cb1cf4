"""Plain SQL for the few hottest statements (the labeling workspace's "next" and "submit").

Building an ORM query costs far more Python than running it on an index; these helpers skip the
building and keep the values right per backend (each value goes through its field's
``get_db_prep_save``: JSON, datetimes, booleans on SQLite and PostgreSQL alike). Everything else
uses the ORM.
"""

import functools
from typing import NamedTuple

from django.db import connection


def run(sql, params=()):
    """Execute ``sql``: the rows when it returns rows (SELECT, RETURNING), else the rowcount."""
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else cur.rowcount


def db_value(model, field_name, value):
    """``value`` as the database driver wants it for ``model.field_name``."""
    return model._meta.get_field(field_name).get_db_prep_save(value, connection)


def insert(model, rows, *, returning=None, skip_conflicts_on=None):
    """INSERT ``rows`` (dicts of attname -> value, same keys in each) in one statement.

    With ``returning`` (a column name), the list of that column's values for the rows inserted.
    With ``skip_conflicts_on`` (a unique column), rows that would break its uniqueness are left
    out silently (ON CONFLICT DO NOTHING: SQLite and PostgreSQL), so ``returning`` tells which
    rows went in."""
    columns = list(rows[0])
    fields = [model._meta.get_field(c[:-3] if c.endswith("_id") else c) for c in columns]
    one = f"({', '.join(['%s'] * len(columns))})"
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(f.column for f in fields)}) "
        f"VALUES {', '.join([one] * len(rows))}"
    )
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({skip_conflicts_on}) DO NOTHING"
    params = [f.get_db_prep_save(row[c], connection) for row in rows for c, f in zip(columns, fields)]
    if returning:
        return [r[0] for r in run(f"{sql} RETURNING {returning}", params)]
    return run(sql, params)


def objects(model, sql, params=()):
    """Instances of ``model`` from a plain SELECT of its columns (``SELECT t.* …``), each value
    converted as the ORM converts it (datetimes, JSON, booleans per backend). Any other column of
    the SELECT becomes an attribute of the same name. What ``Model.objects.raw`` does, without its
    per-query setup. The converters are found through ORM internals (``Field.get_col``,
    ``connection.ops.get_db_converters``, cached per model and column list in ``_row_plan``): they
    stay because this costs 0.55 of ``Model.objects.raw`` for the labeling queue's one-row lookup
    (111.8 against 202.6 µs; the ORM query 1,692 µs) — ``bench/sql_helpers.py``, docs/benchmarks.md."""
    with connection.cursor() as cur:
        cur.execute(sql, params)
        names = tuple(c[0] for c in cur.description)
        rows = cur.fetchall()
    if not rows:
        return []
    plan = _row_plan(model, names, connection.vendor)
    out = []
    for row in rows:
        values = []
        for i, convert in plan.fields:
            v = row[i]
            for fn, expr in convert:
                v = fn(v, expr, connection)
            values.append(v)
        obj = model.from_db(connection.alias, plan.attnames, values)
        for i, name in plan.extra:
            setattr(obj, name, row[i])
        out.append(obj)
    return out


class _Plan(NamedTuple):
    fields: list  # [(column index, [(converter, expression)])] in the model's field order
    attnames: list
    extra: list  # [(column index, name)] of columns that are not the model's


@functools.lru_cache(maxsize=256)
def _row_plan(model, names, vendor):
    at = {name: i for i, name in enumerate(names)}
    fields, attnames = [], []
    for f in model._meta.concrete_fields:
        if f.column in at:
            col = f.get_col(model._meta.db_table)
            convert = [(fn, col) for fn in connection.ops.get_db_converters(col) + col.get_db_converters(connection)]
            fields.append((at.pop(f.column), convert))
            attnames.append(f.attname)
    return _Plan(fields, attnames, sorted((i, name) for name, i in at.items()))
