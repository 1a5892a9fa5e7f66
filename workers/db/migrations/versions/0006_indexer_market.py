"""indexer: pairing and device generations, slash pools, order splits, member pools, earnings

Revision ID: 0006_indexer_market
Revises: 0005_oem_link_profile
Create Date: 2026-11-26 13:23:22.579062
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0006_indexer_market"
down_revision: str | Sequence[str] | None = "0005_oem_link_profile"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "earnings",
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("claimable", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_earnings")),
    )
    op.create_table(
        "member_pools",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("pool", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("last_epoch", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_member_pools")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", workers.db.base.UInt(length=78), nullable=True))

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_force", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("spec_hash", workers.db.base.Bytes32(length=66), nullable=True))
        batch_op.add_column(sa.Column("to_members", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("to_operator", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("to_broker", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("to_treasury", workers.db.base.UInt(length=78), nullable=True))

    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_generation", workers.db.base.UInt(length=78), nullable=True))

    with op.batch_alter_table("settled_epochs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed", workers.db.base.UInt(length=78), nullable=True))

    with op.batch_alter_table("slashes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_active", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("from_unbonding", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("claim_closes_at", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("remaining", workers.db.base.UInt(length=78), nullable=True))
        batch_op.add_column(sa.Column("swept", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slashes", schema=None) as batch_op:
        batch_op.drop_column("swept")
        batch_op.drop_column("remaining")
        batch_op.drop_column("claim_closes_at")
        batch_op.drop_column("from_unbonding")
        batch_op.drop_column("from_active")

    with op.batch_alter_table("settled_epochs", schema=None) as batch_op:
        batch_op.drop_column("claimed")

    with op.batch_alter_table("pairings", schema=None) as batch_op:
        batch_op.drop_column("device_generation")

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("to_treasury")
        batch_op.drop_column("to_broker")
        batch_op.drop_column("to_operator")
        batch_op.drop_column("to_members")
        batch_op.drop_column("spec_hash")
        batch_op.drop_column("in_force")

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("generation")

    op.drop_table("member_pools")
    op.drop_table("earnings")
