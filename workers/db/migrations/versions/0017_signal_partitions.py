"""signals history partitioned by day on PostgreSQL; hourly roll-up table (issue #17)

PostgreSQL: the plain `signals` table becomes a table partitioned by RANGE (timestamp_ms),
one partition per UTC day (`signals_pYYYYMMDD`) for every day its rows fall on and for today
and the next two (workers.signals.storage makes the rest ahead), plus `signals_default` for
anything outside them; the rows move over in this transaction, ids and their sequence kept;
the primary key becomes (id, timestamp_ms), as a partitioned table's must hold the partition
key. SQLite keeps its plain table. Both gain `signal_rollups`.

Revision ID: 0017_signal_partitions
Revises: 0016_key_epochs_revoked
Create Date: 2026-12-06 11:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0017_signal_partitions"
down_revision: str | Sequence[str] | None = "0016_key_epochs_revoked"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAY_MS = 86_400_000
#: Days after today given a partition here (the maintenance task keeps its own horizon).
AHEAD = 2
#: Existing rows further than this from today stay in the default partition.
OLDEST_DAYS = 3_650
_COLUMNS = "id, vehicle_id, name, value, number, unit, timestamp_ms, source, signature"
_EPOCH = date(1970, 1, 1)


def _signals_table(name: str, primary_key: tuple[str, ...], **partitioning: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), server_default=sa.text("nextval('signals_id_seq')"), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("number", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(*primary_key, name="pk_signals"),
        **partitioning,
    )
    op.create_index("ix_signals_vehicle_name_ts", "signals", ["vehicle_id", "name", "timestamp_ms"])
    op.create_index("ix_signals_vehicle_ts", "signals", ["vehicle_id", "timestamp_ms"])


def _set_aside(old: str) -> None:
    """Renames `signals`, its key and indexes out of the way of the new table's names."""
    op.execute(f"ALTER TABLE signals RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_signals TO pk_{old}")
    op.execute(f"ALTER INDEX ix_signals_vehicle_name_ts RENAME TO ix_{old}_vehicle_name_ts")
    op.execute(f"ALTER INDEX ix_signals_vehicle_ts RENAME TO ix_{old}_vehicle_ts")


def _move_rows(old: str) -> None:
    op.execute(f"INSERT INTO signals ({_COLUMNS}) SELECT {_COLUMNS} FROM {old}")
    op.execute("ALTER SEQUENCE signals_id_seq OWNED BY signals.id")
    op.execute(f"DROP TABLE {old}")


def _partition_days(old: str) -> list[date]:
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=OLDEST_DAYS), today + timedelta(days=AHEAD)
    found = op.get_bind().execute(sa.text(f"SELECT DISTINCT timestamp_ms / {DAY_MS} FROM {old}")).scalars()
    days = {_EPOCH + timedelta(days=int(n)) for n in found if n is not None and int(n) >= 0}
    days |= {today + timedelta(days=n) for n in range(AHEAD + 1)}
    return sorted(d for d in days if first <= d <= last)


def _upgrade_postgresql() -> None:
    _set_aside("signals_plain")
    _signals_table("signals", ("id", "timestamp_ms"), postgresql_partition_by="RANGE (timestamp_ms)")
    op.execute("CREATE TABLE signals_default PARTITION OF signals DEFAULT")
    for day in _partition_days("signals_plain"):
        start = (day - _EPOCH).days * DAY_MS
        op.execute(
            f"CREATE TABLE signals_p{day:%Y%m%d} PARTITION OF signals "
            f"FOR VALUES FROM ({start}) TO ({start + DAY_MS})"
        )
    _move_rows("signals_plain")


def _downgrade_postgresql() -> None:
    _set_aside("signals_partitioned")
    _signals_table("signals", ("id",))
    _move_rows("signals_partitioned")  # its partitions go with it


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    op.create_table(
        "signal_rollups",
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("hour_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "name", "hour_ms", name=op.f("pk_signal_rollups")),
    )
    with op.batch_alter_table("signal_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_signal_rollups_hour_ms", ["hour_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signal_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_signal_rollups_hour_ms")
    op.drop_table("signal_rollups")
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
