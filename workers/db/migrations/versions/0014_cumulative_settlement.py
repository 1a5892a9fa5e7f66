"""cumulative settlement (issue #15, SPEC15 §7 settlement)

Usage rows (one per call, taken by an epoch) become counters per (product, order, vehicle,
period, owner); the per-epoch settlements and their leaves go; the settlement keeps its
accounting per product (cursor and carry), per closed period and per account (its total owed), and its
cumulative roots with every leaf's proof; the workers' transactions record their fees, the
hashes they replaced and when they were sent.

Revision ID: 0014_cumulative_settlement
Revises: 0013_market_vesting
Create Date: 2026-12-06 08:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0014_cumulative_settlement"
down_revision: str | Sequence[str] | None = "0013_market_vesting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UINT = workers.db.base.UInt(length=78)
_ADDRESS = workers.db.base.Address(length=42)
_BYTES32 = workers.db.base.Bytes32(length=66)
_TX_COLUMNS = (
    ("max_fee", _UINT),
    ("priority_fee", _UINT),
    ("replaced", sa.Text()),
    ("sent_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_product_epoch")
    op.drop_table("usage")
    op.drop_table("settlement_epochs")
    with op.batch_alter_table("settlement_leaves", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_leaves_account")
    op.drop_table("settlement_leaves")

    with op.batch_alter_table("chain_txs", schema=None) as batch_op:
        for name, type_ in _TX_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))

    op.create_table(
        "usage_counters",
        sa.Column("product_id", _UINT, nullable=False),
        sa.Column("order_id", _UINT, nullable=False),
        sa.Column("vehicle_id", _UINT, nullable=False),
        sa.Column("period", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner", _ADDRESS, nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "product_id", "order_id", "vehicle_id", "period", "owner", name=op.f("pk_usage_counters")
        ),
    )
    with op.batch_alter_table("usage_counters", schema=None) as batch_op:
        batch_op.create_index("ix_usage_counters_product_period", ["product_id", "period"], unique=False)

    op.create_table(
        "settlement_products",
        sa.Column("product_id", _UINT, nullable=False),
        sa.Column("next_period", sa.BigInteger(), nullable=False),
        sa.Column("carry", _UINT, nullable=False),
        sa.Column("taken", _UINT, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_settlement_products")),
    )
    op.create_table(
        "settlement_periods",
        sa.Column("product_id", _UINT, nullable=False),
        sa.Column("period", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("released", _UINT, nullable=False),
        sa.Column("carry_in", _UINT, nullable=False),
        sa.Column("paid", _UINT, nullable=False),
        sa.Column("carry_out", _UINT, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "period", name=op.f("pk_settlement_periods")),
    )
    op.create_table(
        "settlement_accounts",
        sa.Column("account", _ADDRESS, nullable=False),
        sa.Column("owed", _UINT, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_settlement_accounts")),
    )

    op.create_table(
        "settlement_roots",
        sa.Column("id", _ID, nullable=False),
        sa.Column("root", _BYTES32, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", _UINT, nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("product_ids", sa.Text(), nullable=False),
        sa.Column("cumulative_taken", sa.Text(), nullable=False),
        sa.Column("data_hash", _BYTES32, nullable=False),
        sa.Column("claimable_at", sa.BigInteger(), nullable=True),
        sa.Column("propose_tx_id", _ID, nullable=True),
        sa.Column("accept_tx_id", _ID, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["accept_tx_id"], ["chain_txs.id"], name=op.f("fk_settlement_roots_accept_tx_id_chain_txs")
        ),
        sa.ForeignKeyConstraint(
            ["propose_tx_id"], ["chain_txs.id"], name=op.f("fk_settlement_roots_propose_tx_id_chain_txs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_roots")),
    )
    with op.batch_alter_table("settlement_roots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_roots_root"), ["root"], unique=False)
        batch_op.create_index(batch_op.f("ix_settlement_roots_status"), ["status"], unique=False)

    op.create_table(
        "settlement_root_leaves",
        sa.Column("root_id", _ID, nullable=False),
        sa.Column("account", _ADDRESS, nullable=False),
        sa.Column("cumulative", _UINT, nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["root_id"],
            ["settlement_roots.id"],
            name=op.f("fk_settlement_root_leaves_root_id_settlement_roots"),
        ),
        sa.PrimaryKeyConstraint("root_id", "account", name=op.f("pk_settlement_root_leaves")),
    )
    with op.batch_alter_table("settlement_root_leaves", schema=None) as batch_op:
        batch_op.create_index("ix_settlement_root_leaves_account", ["account"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("settlement_root_leaves", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_root_leaves_account")
    op.drop_table("settlement_root_leaves")
    with op.batch_alter_table("settlement_roots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_roots_status"))
        batch_op.drop_index(batch_op.f("ix_settlement_roots_root"))
    op.drop_table("settlement_roots")
    op.drop_table("settlement_accounts")
    op.drop_table("settlement_periods")
    op.drop_table("settlement_products")
    with op.batch_alter_table("usage_counters", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_counters_product_period")
    op.drop_table("usage_counters")

    with op.batch_alter_table("chain_txs", schema=None) as batch_op:
        for name, _type in reversed(_TX_COLUMNS):
            batch_op.drop_column(name)

    op.create_table(
        "settlement_leaves",
        sa.Column("product_id", _UINT, nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account", _ADDRESS, nullable=False),
        sa.Column("amount", _UINT, nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "epoch", "index", name=op.f("pk_settlement_leaves")),
    )
    with op.batch_alter_table("settlement_leaves", schema=None) as batch_op:
        batch_op.create_index("ix_settlement_leaves_account", ["account"], unique=False)
    op.create_table(
        "settlement_epochs",
        sa.Column("product_id", _UINT, nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pool", _UINT, nullable=False),
        sa.Column("pool_block", sa.BigInteger(), nullable=False),
        sa.Column("amount", _UINT, nullable=False),
        sa.Column("remainder", _UINT, nullable=False),
        sa.Column("total_units", _UINT, nullable=False),
        sa.Column("usage_rows", sa.Integer(), nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("root", _BYTES32, nullable=True),
        sa.Column("tx_id", _ID, nullable=True),
        sa.Column("settled_block", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tx_id"], ["chain_txs.id"], name=op.f("fk_settlement_epochs_tx_id_chain_txs")
        ),
        sa.PrimaryKeyConstraint("product_id", "epoch", name=op.f("pk_settlement_epochs")),
    )
    op.create_table(
        "usage",
        sa.Column("id", _ID, nullable=False),
        sa.Column("product_id", _UINT, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", _UINT, nullable=False),
        sa.Column("owner", _ADDRESS, nullable=False),
        sa.Column("units", _UINT, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("included", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage")),
        sa.UniqueConstraint("source", name=op.f("uq_usage_source")),
    )
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.create_index("ix_usage_product_epoch", ["product_id", "epoch", "included"], unique=False)
