"""The workers' schema: made by Alembic only, one linear history, the same as the models on
SQLite and PostgreSQL, and chain integers exact on both."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from tests.support.databases import get_engine, session_scope
from workers.db import Base, heads, load_models, upgrade
from workers.db.projections import Vehicle

MAX_UINT256 = 2**256 - 1


def test_migrations_have_one_head():
    assert len(heads()) == 1, f"two migration heads {heads()}: point the newer down_revision at the other"


def test_upgrade_creates_every_model_table(db_url):
    load_models()
    tables = set(inspect(get_engine(db_url)).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_models_match_migrations(db_url):
    load_models()
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: add a revision for {diff}"


def test_upgrade_twice_is_a_no_op(db_url):
    upgrade(db_url)
    upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads())


def test_uint_columns_keep_uint256_exact_and_ordered(db_url):
    values = [MAX_UINT256, 0, 2**64, 2**63 - 1, 10, 9]
    with session_scope(db_url) as session:
        for i, generation in enumerate(values):
            session.add(
                Vehicle(
                    vehicle_id=generation,
                    owner="0xAbC0000000000000000000000000000000000001",
                    generation=i,
                    burned=False,
                    block_number=1,
                )
            )
    with session_scope(db_url, read_only=True) as session:
        ids = session.scalars(select(Vehicle.vehicle_id).order_by(Vehicle.vehicle_id)).all()
        assert ids == sorted(values)
        row = session.get(Vehicle, MAX_UINT256)
        assert row is not None and row.owner == "0xabc0000000000000000000000000000000000001"
