"""The only way handlers write: a write-back cache over the projection tables that records,
for blocks inside the reorg window, each row's image before the block changed it.

Handlers call `get` / `put` / `update` / `delete` with table names and primary keys; the
Store keeps the rows in memory for the batch, then `flush` writes every changed row with one
bulk upsert and one bulk delete per table, in the caller's transaction. `rollback_to` undoes
every block after a fork point from the undo records, exactly. Both bump the change counter
(`projection_versions`) of every table they wrote, in the same transaction, for the processes
that cache projection rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, insert, select

from workers.db import Base, load_models, upsert
from workers.db.indexing import ProjectionVersion, UndoRecord

Row = dict[str, Any]
Key = tuple[Any, ...]
#: Tables the indexer never writes through the Store (its own bookkeeping).
BOOKKEEPING = frozenset(
    {"indexer_cursor", "indexer_blocks", "indexer_undo", "chain_events", "projection_versions"}
)
#: Projection tables whose rows are dropped from the cache when it grows past this many.
CACHE_LIMIT = 200_000


class MissingRowError(LookupError):
    """A handler updated a row that does not exist: the index and the chain disagree."""


class TableInfo:
    """A projection table's columns and the statements the Store runs on it."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.name = table.name
        self.pk = tuple(c.name for c in table.primary_key.columns)
        self.columns = tuple(c.name for c in table.columns)
        self._select = select(table).where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in self.pk)))
        self._delete = delete(table).where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in self.pk)))

    def key(self, row: Row) -> Key:
        return tuple(row[k] for k in self.pk)

    def key_params(self, key: Key) -> dict[str, Any]:
        return {f"k_{k}": v for k, v in zip(self.pk, key, strict=True)}

    def is_empty(self, conn: Connection) -> bool:
        return conn.execute(select(self.table.c[self.pk[0]]).limit(1)).first() is None

    def load(self, conn: Connection, key: Key) -> Row | None:
        found = conn.execute(self._select, self.key_params(key)).mappings().first()
        return dict(found) if found is not None else None

    def upsert(self, conn: Connection, rows: list[Row]) -> None:
        if rows:
            others = [c for c in self.columns if c not in self.pk]
            conn.execute(upsert(conn, self.table, key=self.pk, update=others), rows)

    def delete(self, conn: Connection, keys: list[Key]) -> None:
        if keys:
            conn.execute(self._delete, [self.key_params(k) for k in keys])


_tables: dict[str, TableInfo] = {}


def table_info(name: str) -> TableInfo:
    if not _tables:
        load_models()
        for table in Base.metadata.sorted_tables:
            _tables[table.name] = TableInfo(table)
    if name not in _tables or name in BOOKKEEPING:
        raise KeyError(f"{name!r} is not a projection table")
    return _tables[name]


class Store:
    """Projection rows for one indexer run, written back in bulk by `flush`.

    `block` is the block of the event being handled (the framework sets it). Blocks at or
    above `undo_from` get undo records: the first time a block touches a row, the row's
    image before that block is kept, so `rollback_to` can restore it.
    """

    def __init__(self, conn: Connection, undo_from: int | None) -> None:
        self.conn = conn
        self.undo_from = undo_from
        self.block = 0
        self._rows: dict[tuple[str, Key], Row | None] = {}
        self._dirty: dict[str, set[Key]] = defaultdict(set)
        self._undo_seen: set[tuple[int, str, Key]] = set()
        self._undo: list[dict[str, Any]] = []
        #: Tables empty when this run began and whose rows since are all in the cache: a
        #: miss there is a row that does not exist, no query needed (fresh backfills).
        self._complete: set[str] = set()
        self._checked: set[str] = set()

    def rebind(self, conn: Connection, undo_from: int | None) -> None:
        """Continues with the cached rows in a new transaction (they are what it committed)."""
        self.conn = conn
        self.undo_from = undo_from
        if len(self._rows) > CACHE_LIMIT:
            self._rows.clear()
            self._complete.clear()

    def forget(self) -> None:
        """Drops every cached row (after a rollback or a failed transaction)."""
        self._rows.clear()
        self._dirty.clear()
        self._undo_seen.clear()
        self._undo.clear()
        self._complete.clear()
        self._checked.clear()

    # --- what handlers call -------------------------------------------------------------

    def get(self, table: str, *key: Any) -> Row | None:
        """The row of `table` with primary key `key` as of this event, or None."""
        row = self._current(table_info(table), key)
        return dict(row) if row is not None else None

    def put(self, table: str, row: Row) -> None:
        """Sets the whole row (its primary key is in it)."""
        info = table_info(table)
        key = info.key(row)
        missing = set(info.columns) - row.keys()
        if missing:
            raise ValueError(f"{table} row {key} lacks columns {sorted(missing)}")
        self._write(info, key, {c: row[c] for c in info.columns})

    def update(self, table: str, key: Key, **changes: Any) -> Row:
        """Changes some columns of an existing row; MissingRowError if there is none."""
        info = table_info(table)
        current = self._current(info, key)
        if current is None:
            raise MissingRowError(f"{table} has no row {key} (block {self.block})")
        row = {**current, **changes}
        self._write(info, key, row)
        return dict(row)

    def delete(self, table: str, *key: Any) -> None:
        """Removes the row if it exists."""
        info = table_info(table)
        if self._current(info, key) is not None:
            self._write(info, key, None)

    # --- internals ----------------------------------------------------------------------

    def _current(self, info: TableInfo, key: Key) -> Row | None:
        slot = (info.name, key)
        if slot in self._rows:
            return self._rows[slot]
        if info.name not in self._checked:
            self._checked.add(info.name)
            if info.is_empty(self.conn):
                self._complete.add(info.name)
        row = None if info.name in self._complete else info.load(self.conn, key)
        self._rows[slot] = row
        return row

    def _write(self, info: TableInfo, key: Key, row: Row | None) -> None:
        slot = (info.name, key)
        if self.undo_from is not None and self.block >= self.undo_from:
            seen = (self.block, info.name, key)
            if seen not in self._undo_seen:
                self._undo_seen.add(seen)
                before = self._current(info, key)
                self._undo.append(
                    {
                        "block_number": self.block,
                        "table_name": info.name,
                        "key": json.dumps(list(key)),
                        "before": None if before is None else json.dumps(before),
                    }
                )
        self._rows[slot] = row
        self._dirty[info.name].add(key)

    def flush(self) -> int:
        """Writes every changed row and the undo records; the number of rows written."""
        written = 0
        for name, keys in self._dirty.items():
            info = table_info(name)
            rows = [self._rows[(name, k)] for k in keys]
            info.delete(self.conn, [k for k, r in zip(keys, rows, strict=True) if r is None])
            info.upsert(self.conn, [r for r in rows if r is not None])
            written += len(keys)
        if self._undo:
            self.conn.execute(insert(UndoRecord.__table__), self._undo)
        bump_versions(self.conn, self._dirty)
        self._dirty.clear()
        self._undo.clear()
        self._undo_seen.clear()
        return written


def rollback_to(conn: Connection, fork_block: int) -> int:
    """Restores every projection row to its state at the end of `fork_block` from the undo
    records of later blocks, and drops those records; the number of rows restored."""
    undo = UndoRecord.__table__
    records = conn.execute(
        select(undo.c.id, undo.c.table_name, undo.c.key, undo.c.before)
        .where(undo.c.block_number > fork_block)
        .order_by(undo.c.id)
    ).all()
    # The oldest record of a row after the fork holds the row as the fork block left it.
    restore: dict[tuple[str, str], str | None] = {}
    for _id, table_name, key, before in records:
        restore.setdefault((table_name, key), before)
    by_table: dict[str, tuple[list[Key], list[Row]]] = defaultdict(lambda: ([], []))
    for (table_name, key), before in restore.items():
        deletes, upserts = by_table[table_name]
        if before is None:
            deletes.append(tuple(json.loads(key)))
        else:
            upserts.append(json.loads(before))
    for table_name, (deletes, upserts) in by_table.items():
        info = table_info(table_name)
        info.delete(conn, deletes)
        info.upsert(conn, upserts)
    conn.execute(delete(undo).where(undo.c.block_number > fork_block))
    bump_versions(conn, by_table)
    return len(restore)


def bump_versions(conn: Connection, tables: Iterable[str]) -> None:
    """Adds one to the change counter of each of `tables` (one statement)."""
    rows = [{"table_name": name, "version": 1} for name in sorted(tables)]
    if rows:
        conn.execute(upsert(conn, ProjectionVersion, add=("version",)), rows)
