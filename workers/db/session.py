"""Engines and sessions from DATABASE_URL: SQLite (a file) by default, PostgreSQL when the
URL says so. A `Database` is one URL's engine (its connection pool) and the transactions on
it; the process's runtime (workers/runtime.py) holds one. Forked children (Celery's prefork
pool) never use a connection of their parent's pools."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

#: Milliseconds a SQLite writer waits for the lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 (the driver installed here)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (the driver's own
        # deferred BEGIN would make two writers deadlock-fail instead of wait).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the lock up front (BEGIN IMMEDIATE) and so wait for each other in order.
        immediate = connection.get_execution_options().get("sqlite_immediate", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: Every engine this process made, so that a forked child can drop their pooled connections
#: and a test can close them all; a lookup of nothing (engines belong to their Database).
_LIVE_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def create_engine_for(url: str, *, echo: bool = False) -> Engine:
    """A new engine (connection pool) for `url`, SQLite tuned for concurrent writers."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo)
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, echo=echo, pool_pre_ping=True)
    _LIVE_ENGINES.add(engine)
    return engine


def dispose_engines() -> None:
    """Closes the pooled connections of every engine of this process (tests, before they drop
    a database); the engines stay usable and connect again on their next use."""
    for engine in list(_LIVE_ENGINES):
        engine.dispose()


def _after_fork_in_child() -> None:
    # A pooled connection shared with the parent must never be used by the child.
    for engine in list(_LIVE_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


class _LazySession:
    """Stands for the read-only session of `Database.lazy_read_session`, begun on first use."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._scope: AbstractContextManager[Session] | None = None
        self._session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._scope = self._database.session(read_only=True)
            self._session = self._scope.__enter__()
        return getattr(self._session, name)

    def end(self, error: BaseException | None) -> None:
        if self._scope is not None:
            self._scope.__exit__(type(error) if error else None, error, None)


class Database:
    """One database: its engine and transactions on it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.engine = create_engine_for(self.url, echo=echo)
        self._read_engine = self.engine.execution_options(sqlite_immediate=False)

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction: commits when the block ends normally, rolls back on an exception.

        On SQLite a writing transaction begins with BEGIN IMMEDIATE (writers queue on the lock);
        `read_only=True` begins a plain deferred transaction that never blocks writers (WAL).
        """
        session = Session(bind=self._read_engine if read_only else self.engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def lazy_read_session(self) -> Iterator[Session]:
        """A read-only transaction begun only when something reads through it (hot paths
        whose reads are mostly answered from memory pay nothing for it otherwise)."""
        lazy = _LazySession(self)
        try:
            yield cast(Session, lazy)
        except BaseException as exc:
            lazy.end(exc)
            raise
        lazy.end(None)

    def dispose(self) -> None:
        """Closes the pooled connections (the engine connects again on its next use)."""
        self.engine.dispose()
