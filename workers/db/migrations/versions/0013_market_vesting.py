"""market vesting, cumulative roots and refunds (issue #15, SPEC15 §7 projections)

Orders gain their terms version, vesting, delivery and refund; terms gain validity_seconds;
the per-epoch member pools and settled epochs go (no epochs on chain any more); cumulative
roots, per-product takes, per-account claimed totals come; `claims` is one row per Claimed
event of the cumulative claim.

Revision ID: 0013_market_vesting
Revises: 0012_privacy_zones
Create Date: 2026-12-06 08:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0013_market_vesting"
down_revision: str | Sequence[str] | None = "0012_privacy_zones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ORDER_COLUMNS = (
    ("terms_version", workers.db.base.UInt(length=78)),
    ("member_share", workers.db.base.UInt(length=78)),
    ("vest_starts_at", workers.db.base.UInt(length=78)),
    ("vest_ends_at", workers.db.base.UInt(length=78)),
    ("delivered_at", workers.db.base.UInt(length=78)),
    ("result_hash", workers.db.base.Bytes32(length=66)),
    ("refunded_at", workers.db.base.UInt(length=78)),
    ("refunded_amount", workers.db.base.UInt(length=78)),
)


def _create_epoch_claims() -> None:
    op.create_table(
        "claims",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("epoch", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_claims")),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claims_account"), ["account"], unique=False)
        batch_op.create_index(
            "ix_claims_product_epoch_account", ["product_id", "epoch", "account"], unique=False
        )


def _drop_claims(*, epoch_index: bool) -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        if epoch_index:
            batch_op.drop_index("ix_claims_product_epoch_account")
        batch_op.drop_index(batch_op.f("ix_claims_account"))
    op.drop_table("claims")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name, type_ in _ORDER_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    for table in ("products", "product_terms"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("validity_seconds", workers.db.base.UInt(length=78), nullable=True))

    op.drop_table("member_pools")
    op.drop_table("settled_epochs")
    _drop_claims(epoch_index=True)

    op.create_table(
        "claims",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("cumulative", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_claims")),
    )
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_claims_account"), ["account"], unique=False)

    op.create_table(
        "market_roots",
        sa.Column("root", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimable_at", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("data_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("product_ids", sa.Text(), nullable=False),
        sa.Column("cumulative_taken", sa.Text(), nullable=False),
        sa.Column("total_taken", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("root", name=op.f("pk_market_roots")),
    )
    with op.batch_alter_table("market_roots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_market_roots_status"), ["status"], unique=False)

    op.create_table(
        "product_taken",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("taken", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_taken")),
    )
    op.create_table(
        "member_claims",
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("claimed", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_member_claims")),
    )


def downgrade() -> None:
    op.drop_table("member_claims")
    op.drop_table("product_taken")
    with op.batch_alter_table("market_roots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_market_roots_status"))
    op.drop_table("market_roots")
    _drop_claims(epoch_index=False)
    _create_epoch_claims()

    op.create_table(
        "settled_epochs",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("epoch", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("members_root", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("claimed", workers.db.base.UInt(length=78), nullable=True),
        sa.PrimaryKeyConstraint("product_id", "epoch", name=op.f("pk_settled_epochs")),
    )
    op.create_table(
        "member_pools",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("pool", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("last_epoch", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_member_pools")),
    )
    for table in ("product_terms", "products"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("validity_seconds")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name, _ in reversed(_ORDER_COLUMNS):
            batch_op.drop_column(name)
