"""vehicles.tenure_started_at (the current owner's tenure bounds every read) and a
(vehicle_id, timestamp_ms) index on signals for the windowed history

Revision ID: 0009_tenure_window
Revises: 0008_sessions_onboarding
Create Date: 2026-12-06 05:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_tenure_window"
down_revision: str | Sequence[str] | None = "0008_sessions_onboarding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenure_started_at", sa.BigInteger(), nullable=True))
    # The last Transfer of a vehicle is its row's block (mint, transfer and burn write it) and
    # blocks with events are recorded with their time; where it is not known the tenure stays
    # unknown and nothing of the vehicle is served.
    op.execute(
        "UPDATE vehicles SET tenure_started_at = "
        "(SELECT timestamp FROM indexer_blocks WHERE indexer_blocks.number = vehicles.block_number)"
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index("ix_signals_vehicle_ts", ["vehicle_id", "timestamp_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index("ix_signals_vehicle_ts")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_column("tenure_started_at")
