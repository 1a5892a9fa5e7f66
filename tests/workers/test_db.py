"""The workers' schema: made by Alembic only, one linear history, the same as the models on
SQLite and PostgreSQL, and chain integers exact on both; the two statements whose SQL differs
between them (`upsert`, `for_update`, `append_rows`) behave alike on both."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError

from tests.support.databases import get_engine, session_scope
from workers.db import Base, append_rows, for_update, heads, include_name, load_models, upgrade, upsert
from workers.db.projections import Vehicle
from workers.db.signals import StoredSignal
from workers.protocol import UINT256_MAX as MAX_UINT256

OWNER = "0xabc0000000000000000000000000000000000001"


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
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
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


def _vehicle(vehicle_id: int, generation: int, block: int) -> dict[str, object]:
    return {"vehicle_id": vehicle_id, "owner": OWNER, "generation": generation, "burned": False,
            "block_number": block}  # fmt: skip


def _generations(db_url: str) -> dict[int, int]:
    with session_scope(db_url, read_only=True) as session:
        return dict(session.execute(select(Vehicle.vehicle_id, Vehicle.generation)).all())


def test_upsert_inserts_then_updates_only_what_is_newer(db_url):
    with session_scope(db_url) as session:
        statement = upsert(session, Vehicle, update=("generation", "block_number"), if_newer="block_number")
        session.execute(statement, [_vehicle(1, 1, 10), _vehicle(MAX_UINT256, 1, 10)])
        session.execute(statement, _vehicle(1, 2, 11))  # newer: replaces
        session.execute(statement, _vehicle(MAX_UINT256, 0, 9))  # older: kept out
    assert _generations(db_url) == {1: 2, MAX_UINT256: 1}


def test_upsert_without_updates_ignores_the_second_insert(db_url):
    with session_scope(db_url) as session:
        statement = upsert(session, Vehicle)
        session.execute(statement, _vehicle(7, 1, 10))
        session.execute(statement, _vehicle(7, 5, 12))
    assert _generations(db_url) == {7: 1}
    with session_scope(db_url) as session:
        assert upsert(session, Vehicle) is statement  # built once per shape


def test_a_row_read_for_update_waits_for_the_reading_transaction(db_url):
    with session_scope(db_url) as session:
        session.execute(upsert(session, Vehicle), _vehicle(3, 1, 10))
    query = for_update(select(Vehicle.generation).where(Vehicle.vehicle_id == 3))
    seen: list[int] = []

    def second_reader() -> None:
        with session_scope(db_url) as session:
            seen.append(session.scalars(query).one())

    with session_scope(db_url) as holder:
        assert holder.scalars(query).one() == 1
        reader = threading.Thread(target=second_reader)
        reader.start()
        reader.join(0.5)
        assert reader.is_alive(), "the second reader did not wait for the lock"
        holder.execute(update(Vehicle).where(Vehicle.vehicle_id == 3).values(generation=5))
    reader.join(30)
    assert seen == [5]  # it read after the holder committed, never the value the holder replaced


def test_append_rows_applies_the_column_rules_and_defaults(db_url):
    """COPY on PostgreSQL, INSERT on SQLite: the same rows come back (uint256 exact, addresses
    lower-cased, ids from the table's own sequence), and a duplicate key is an IntegrityError
    that leaves nothing of its batch."""
    rows = [_vehicle(MAX_UINT256, 1, 10), _vehicle(2**64, 2, 11)]
    rows[0]["owner"] = OWNER.upper().replace("0X", "0x")
    with session_scope(db_url) as session:
        append_rows(session.connection(), Vehicle, rows)
        append_rows(session.connection(), Vehicle, [])
        signal = {"vehicle_id": 5, "name": "Vehicle.Speed", "value": "1.5", "number": 1.5, "unit": None,
                  "timestamp_ms": 1_700_000_000_000, "source": "device:1", "signature": None}  # fmt: skip
        append_rows(
            session.connection(), StoredSignal, [signal, {**signal, "timestamp_ms": 1_700_000_000_001}]
        )
    assert _generations(db_url) == {MAX_UINT256: 1, 2**64: 2}
    with session_scope(db_url, read_only=True) as session:
        assert session.scalar(select(Vehicle.owner).where(Vehicle.vehicle_id == MAX_UINT256)) == OWNER
        ids = session.scalars(select(StoredSignal.id).order_by(StoredSignal.timestamp_ms)).all()
        assert len(ids) == 2 and ids[0] < ids[1]
    with pytest.raises(IntegrityError), session_scope(db_url) as session:
        append_rows(session.connection(), Vehicle, [_vehicle(3, 1, 12), _vehicle(2**64, 9, 12)])
    assert _generations(db_url) == {MAX_UINT256: 1, 2**64: 2}
