"""key managers' epochs, key granters, device revocation (issue #16)

Revision ID: 0016_key_epochs_revoked
Revises: 0015_slash_freeze
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0016_key_epochs_revoked"
down_revision: str | Sequence[str] | None = "0015_slash_freeze"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_manager_epochs",
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("manager", workers.db.base.Address(length=42), nullable=False),
        sa.Column("epoch", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "manager", name=op.f("pk_key_manager_epochs")),
    )
    with op.batch_alter_table("vehicle_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("granted_by", workers.db.base.Address(length=42), nullable=True))
        batch_op.add_column(
            sa.Column("granter_epoch", workers.db.base.UInt(length=78), nullable=False, server_default="0")
        )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("revoked")
    with op.batch_alter_table("vehicle_keys", schema=None) as batch_op:
        batch_op.drop_column("granter_epoch")
        batch_op.drop_column("granted_by")
    op.drop_table("key_manager_epochs")
