"""Databases for worker tests: a SQLite file per test, or a fresh PostgreSQL database per
test on the server at TEST_POSTGRES_URL (default: this machine's, database `test`), dropped
afterwards, so parallel runs never share a schema. Schemas come from Alembic only.

Tests reach a database by URL (`session_scope(url)`, `get_engine(url)`): one `Database` per
URL until `close_databases()`, which also closes the connections of every runtime's engine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from workers.db import Database, dispose_engines, normalize_url, upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

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


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when the server answers."""
    try:
        with psycopg.connect(_libpq(postgres_admin_url()), connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {postgres_admin_url()} does not answer ({exc.__class__.__name__}: {exc})"
    return None


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; yields its SQLAlchemy URL, drops it after."""
    admin = postgres_admin_url()
    name = f"w_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        close_databases()
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(directory: Path, name: str = "workers.db") -> str:
    return f"sqlite:///{directory / name}"


@contextmanager
def migrated(url: str) -> Iterator[str]:
    """`url` brought to the latest schema by Alembic (the only way schemas are made)."""
    upgrade(url)
    try:
        yield url
    finally:
        close_databases()
