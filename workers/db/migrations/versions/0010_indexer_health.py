"""the indexer's health row: chain head, indexed head, when it looked, whether it halted

Revision ID: 0010_indexer_health
Revises: 0008_sessions_onboarding
Create Date: 2026-12-06 05:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_indexer_health"
down_revision: str | Sequence[str] | None = "0009_tenure_window"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indexer_health",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("chain_head", sa.BigInteger(), nullable=False),
        sa.Column("chain_head_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("indexed_block", sa.BigInteger(), nullable=False),
        sa.Column("indexed_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.Column("halted", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_health")),
    )


def downgrade() -> None:
    op.drop_table("indexer_health")
