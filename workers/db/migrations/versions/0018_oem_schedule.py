"""OEM pulls at fleet size: links claimed when due (next_pull_at, with its index), a
vehicle-scoped 429 hold on the link and connection-scoped holds (issue #17)

Revision ID: 0018_oem_schedule
Revises: 0017_signal_partitions
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0018_oem_schedule"
down_revision: str | Sequence[str] | None = "0017_signal_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oem_connection_holds",
        sa.Column("connection_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_oem_connection_holds")),
    )
    with op.batch_alter_table("oem_links", schema=None) as batch_op:
        # existing links are due at once: their first claim sets their schedule
        batch_op.add_column(sa.Column("next_pull_at", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("held_until", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_oem_links_due", ["status", "connection_id", "next_pull_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oem_links", schema=None) as batch_op:
        batch_op.drop_index("ix_oem_links_due")
        batch_op.drop_column("held_until")
        batch_op.drop_column("next_pull_at")
    op.drop_table("oem_connection_holds")
