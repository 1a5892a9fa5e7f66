"""Engines and sessions from DATABASE_URL: SQLite (a file) by default, PostgreSQL when the
URL says so. One engine per URL per process; forked children (Celery's prefork pool) get
fresh connections."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from workers.config import get_settings

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


_ENGINES: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: DATABASE_URL), created once per process."""
    url = normalize_url(url or get_settings().database_url)
    if url not in _ENGINES:
        _ENGINES[url] = _create(url)
    return _ENGINES[url]


def _create(url: str) -> Engine:
    parsed = make_url(url)
    echo = get_settings().database_echo
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def dispose_engines() -> None:
    """Closes and forgets every engine (tests switching databases)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def _after_fork_in_child() -> None:
    # A pooled connection shared with the parent must never be used by the child.
    for engine in _ENGINES.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A sessionmaker bound to the engine for `url` (default: DATABASE_URL)."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """One transaction: commits when the block ends normally, rolls back on an exception.

    On SQLite a writing scope begins with BEGIN IMMEDIATE (writers queue on the lock);
    `read_only=True` begins a plain deferred transaction that never blocks writers (WAL).
    """
    engine = get_engine(url)
    if read_only:
        engine = engine.execution_options(sqlite_immediate=False)
    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
