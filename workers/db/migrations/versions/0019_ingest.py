"""projection change counters for processes that cache projections (device ingest)

Revision ID: 0019_ingest
Revises: 0018_oem_schedule
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_ingest"
down_revision: str | Sequence[str] | None = "0018_oem_schedule"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_versions",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_projection_versions")),
    )


def downgrade() -> None:
    op.drop_table("projection_versions")
