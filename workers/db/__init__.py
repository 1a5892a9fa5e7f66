"""The workers' database: SQLAlchemy 2 models and Alembic migrations (DESIGN.md §4).

SQLite (a file) by default, PostgreSQL when DATABASE_URL says so. Schemas are created only
by Alembic (`alembic upgrade head`, or `upgrade()` from code and tests); never by
`create_all`.

Adding tables from another module: put the models in `workers/db/<module>.py` deriving from
`workers.db.base.Base`, list the module in MODEL_MODULES below, and add an Alembic revision
under `workers/db/migrations/versions/` whose `down_revision` is the current head (one
linear history: `tests/workers/test_db.py` fails when there are two heads).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from workers.db.base import Address, Base, Bytes32, UInt
from workers.db.session import Database, create_engine_for, dispose_engines, normalize_url
from workers.db.signals import is_partition
from workers.db.statements import append_rows, for_update, upsert

#: Modules whose models make up the schema (imported before Alembic compares or runs).
MODEL_MODULES = (
    "workers.db.indexing",
    "workers.db.projections",
    "workers.db.settlement",
    "workers.db.gateway",
    "workers.db.signals",
    "workers.db.oem",
    "workers.db.zones",
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

__all__ = [
    "Address",
    "Base",
    "Bytes32",
    "Database",
    "UInt",
    "alembic_config",
    "append_rows",
    "create_engine_for",
    "dispose_engines",
    "for_update",
    "include_name",
    "load_models",
    "upgrade",
    "upsert",
]


def load_models() -> None:
    """Imports every model module so `Base.metadata` holds the whole schema."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether Alembic compares a reflected object with the models: everything but the signal
    history's partitions, which the maintenance task makes at run time (workers.db.signals)."""
    return not (type_ == "table" and name is not None and is_partition(name))


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for `url` (default: DATABASE_URL), without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["database_url"] = normalize_url(url)
    return config


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    """Brings the database at `url` (default: DATABASE_URL) to `revision` (default: latest)."""
    command.upgrade(alembic_config(url), revision)


def heads() -> list[str]:
    """The head revisions of the migration history (one, when the history is linear)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())
