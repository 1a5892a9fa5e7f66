"""owner privacy zones (issue #14)

Revision ID: 0012_privacy_zones
Revises: 0008_sessions_onboarding
Create Date: 2026-12-06 05:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0012_privacy_zones"
down_revision: str | Sequence[str] | None = "0011_dataset_privacy_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_zones",
        sa.Column("zone_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=False),
        sa.Column("generation", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("zone_id", name=op.f("pk_privacy_zones")),
    )
    op.create_index(
        "ix_privacy_zones_vehicle_generation", "privacy_zones", ["vehicle_id", "generation"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_privacy_zones_vehicle_generation", table_name="privacy_zones")
    op.drop_table("privacy_zones")
