"""slash proposals that freeze a stake (issue #16)

Revision ID: 0015_slash_freeze
Revises: 0014_cumulative_settlement
Create Date: 2026-12-06 08:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0015_slash_freeze"
down_revision: str | Sequence[str] | None = "0014_cumulative_settlement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slash_proposals",
        sa.Column("slash_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("subject", sa.SmallInteger(), nullable=False),
        sa.Column("subject_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("reason_uri", sa.Text(), nullable=False),
        sa.Column("expires_at", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slash_id", name=op.f("pk_slash_proposals")),
    )
    with op.batch_alter_table("slash_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slash_proposals_account"), ["account"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slash_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slash_proposals_account"))
    op.drop_table("slash_proposals")
