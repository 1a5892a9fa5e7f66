"""Tests reach a database by URL (`session_scope(url)`, `get_engine(url)`): one `Database` per
URL until `close_databases()`, which also closes the connections of every runtime's engine.
The scratch databases themselves (a SQLite file or a fresh PostgreSQL database per test) are
the dev kit's (devkit/databases.py)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from workers.db import Database, dispose_engines, normalize_url

_databases: dict[str, Database] = {}


def database(url: str) -> Database:
    """The tests' Database for `url` (one per URL until `close_databases()`)."""
    key = normalize_url(url)
    if key not in _databases:
        _databases[key] = Database(key)
    return _databases[key]


def session_scope(url: str, *, read_only: bool = False) -> AbstractContextManager[Session]:
    """One transaction on `url` (see `workers.db.Database.session`)."""
    return database(url).session(read_only=read_only)


def get_engine(url: str) -> Engine:
    return database(url).engine


def close_databases() -> None:
    """Forgets the tests' databases and closes every engine's connections, runtimes' too
    (before a database is dropped, and between tests)."""
    dispose_engines()
    _databases.clear()
