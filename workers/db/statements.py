"""The statements whose SQL differs between SQLite and PostgreSQL, written once: an insert
that settles conflicts (`upsert`), a read that locks its rows (`for_update`) and a bulk append
(`append_rows`: COPY on PostgreSQL). Everything else the workers run is the same SQL on both
backends."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from workers.db.base import Base

Query = TypeVar("Query", bound=Select[Any])

#: Each backend's INSERT with ON CONFLICT.
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(
    bind: Session | Connection,
    table: type[Base] | Table,
    *,
    key: Sequence[str] | None = None,
    update: Sequence[str] = (),
    if_newer: str | None = None,
    add: Sequence[str] = (),
) -> Insert:
    """INSERT … ON CONFLICT (`key`) DO UPDATE SET each `update` column to the new row's, or
    DO NOTHING when `update` and `add` are empty, in the SQL of the database `bind` talks to. Execute it
    with the row (or a list of rows) as parameters.

    `key`: the unique columns a conflict is on (default: the primary key). `if_newer`: a
    column whose stored value must not be above the new row's for the update to happen (a row
    never moves back). `add`: columns the new row's value is added to (a
    counter). One statement per shape, built once: callers on hot paths pay a lookup."""
    core = table if isinstance(table, Table) else table.__table__
    assert isinstance(core, Table)
    dialect = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    columns = tuple(key) if key is not None else tuple(c.name for c in core.primary_key.columns)
    return _upsert(dialect, core, columns, tuple(update), if_newer, tuple(add))


@cache
def _upsert(  # noqa: PLR0917 - positional: the cache key
    dialect: str,
    table: Table,
    key: tuple[str, ...],
    update: tuple[str, ...],
    if_newer: str | None,
    add: tuple[str, ...] = (),
) -> Insert:
    if dialect not in _INSERTS:
        raise RuntimeError(f"unsupported database {dialect}: the workers run on SQLite or PostgreSQL")
    statement = _INSERTS[dialect](table)
    if not update and not add:
        return statement.on_conflict_do_nothing(index_elements=list(key))
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={
            **{c: statement.excluded[c] for c in update},
            **{c: table.c[c] + statement.excluded[c] for c in add},
        },
        where=None if if_newer is None else table.c[if_newer] <= statement.excluded[if_newer],
    )


def for_update(query: Query) -> Query:
    """`query` holding the rows it reads until the transaction ends, so two workers cannot both
    act on what they read: SELECT … FOR UPDATE on PostgreSQL. SQLite locks the whole database
    instead, from the start of every writing transaction (BEGIN IMMEDIATE, `session.py`), and
    SQLAlchemy renders no FOR UPDATE there: the same query serves both."""
    return query.with_for_update()


def append_rows(connection: Connection, table: type[Base] | Table, rows: Sequence[dict[str, Any]]) -> None:
    """Inserts `rows` (dicts with the same keys; a column left out must have no client-side
    default: it gets the database's) in the connection's transaction. PostgreSQL: one COPY
    stream, each value through its column's bind processing first (the same rules as an
    INSERT), a sixth of the client CPU and a third of the time of an executemany INSERT, which
    psycopg sends as one statement per row. SQLite: an executemany INSERT (one prepared
    statement, in process). COPY is not a statement SQLAlchemy's cursor events see."""
    if not rows:
        return
    core = table if isinstance(table, Table) else table.__table__
    assert isinstance(core, Table)
    given = [core.c[name] for name in rows[0]]
    defaulted = [c.name for c in core.columns if c.default is not None and c not in given]
    if defaulted:
        raise ValueError(f"append_rows into {core.name} leaves out {defaulted}, which have Python defaults")
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.execute(insert(core), list(rows))
        return
    columns = [(c.key, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in given]
    preparer = dialect.identifier_preparer
    listed = ", ".join(preparer.quote(c.name) for c in given)
    driver = connection.connection.driver_connection
    assert driver is not None
    command = f"COPY {preparer.format_table(core)} ({listed}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(command) as copy:
            for row in rows:
                copy.write_row([row[key] if bind is None else bind(row[key]) for key, bind in columns])
    except dialect.loaded_dbapi.Error as error:
        # what SQLAlchemy raises for the same failure of an INSERT (IntegrityError on a unique key)
        raise DBAPIError.instance(
            command, None, error, dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(error, driver, None), dialect=dialect,
        ) from error  # fmt: skip
