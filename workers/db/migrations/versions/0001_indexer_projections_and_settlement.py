"""indexer, projections and settlement

Revision ID: 0001
Revises:
Create Date: 2026-11-26 13:01:41.299768
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bundle_components",
        sa.Column("bundle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("component_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("monthly_quantity", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bundle_id", "position", name=op.f("pk_bundle_components")),
    )
    with op.batch_alter_table("bundle_components", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundle_components_component_id"), ["component_id"], unique=False)

    op.create_table(
        "chain_events",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("contract", sa.String(length=40), nullable=False),
        sa.Column("address", workers.db.base.Address(length=42), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_chain_events")),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index("ix_chain_events_contract_name", ["contract", "name"], unique=False)

    op.create_table(
        "chain_txs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", workers.db.base.Address(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("to", workers.db.base.Address(length=42), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_txs")),
        sa.UniqueConstraint("chain_id", "sender", "nonce", name="uq_chain_txs_sender_nonce"),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_chain_txs_tx_hash")),
    )
    with op.batch_alter_table("chain_txs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_txs_purpose"), ["purpose"], unique=False)

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

    op.create_table(
        "connections",
        sa.Column("connection_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("oracle", workers.db.base.Address(length=42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_connections")),
    )
    op.create_table(
        "demand_signals",
        sa.Column("signal_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("spec_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("budget", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signal_id", name=op.f("pk_demand_signals")),
    )
    with op.batch_alter_table("demand_signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_demand_signals_account"), ["account"], unique=False)

    op.create_table(
        "devices",
        sa.Column("device_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=True),
        sa.Column("manufacturer", workers.db.base.Address(length=42), nullable=True),
        sa.Column("device_signer", workers.db.base.Address(length=42), nullable=True),
        sa.Column("serial_hash", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_devices")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_owner"), ["owner"], unique=False)

    op.create_table(
        "indexer_blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("parent_hash", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_indexer_blocks")),
    )
    op.create_table(
        "indexer_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("deployment", sa.String(length=66), nullable=False),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("undo_from", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_cursor")),
    )
    op.create_table(
        "indexer_undo",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_undo")),
    )
    with op.batch_alter_table("indexer_undo", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_indexer_undo_block_number"), ["block_number"], unique=False)

    op.create_table(
        "manufacturers",
        sa.Column("address", workers.db.base.Address(length=42), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_manufacturers")),
    )
    op.create_table(
        "memberships",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=False),
        sa.Column("version", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("generation", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("joined_at", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "vehicle_id", name=op.f("pk_memberships")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_owner"), ["owner"], unique=False)
        batch_op.create_index("ix_memberships_vehicle", ["vehicle_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("order_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("buyer", workers.db.base.Address(length=42), nullable=False),
        sa.Column("broker", workers.db.base.Address(length=42), nullable=False),
        sa.Column("quantity", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("paid", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("starts_at", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("ends_at", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("use", sa.SmallInteger(), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_buyer"), ["buyer"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_product_id"), ["product_id"], unique=False)

    op.create_table(
        "pairings",
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("device_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("generation", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_pairings")),
        sa.UniqueConstraint("device_id", name=op.f("uq_pairings_device_id")),
    )
    op.create_table(
        "product_terms",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("version", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("price", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("members_bps", sa.Integer(), nullable=True),
        sa.Column("operator_bps", sa.Integer(), nullable=True),
        sa.Column("broker_bps", sa.Integer(), nullable=True),
        sa.Column("permitted_uses", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("required_permissions", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("refresh_seconds", sa.BigInteger(), nullable=True),
        sa.Column("min_cohort", sa.BigInteger(), nullable=True),
        sa.Column("terms_hash", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("terms_uri", sa.Text(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "version", name=op.f("pk_product_terms")),
    )
    op.create_table(
        "products",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("operator", workers.db.base.Address(length=42), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("version", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("price", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("members_bps", sa.Integer(), nullable=True),
        sa.Column("operator_bps", sa.Integer(), nullable=True),
        sa.Column("broker_bps", sa.Integer(), nullable=True),
        sa.Column("permitted_uses", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("required_permissions", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("refresh_seconds", sa.BigInteger(), nullable=True),
        sa.Column("min_cohort", sa.BigInteger(), nullable=True),
        sa.Column("terms_hash", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("terms_uri", sa.Text(), nullable=True),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_operator"), ["operator"], unique=False)

    op.create_table(
        "protocol_params",
        sa.Column("contract", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "name", name=op.f("pk_protocol_params")),
    )
    op.create_table(
        "role_members",
        sa.Column("contract", sa.String(length=40), nullable=False),
        sa.Column("role", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "role", "account", name=op.f("pk_role_members")),
    )
    op.create_table(
        "settled_epochs",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("epoch", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("members_root", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "epoch", name=op.f("pk_settled_epochs")),
    )
    op.create_table(
        "settlement_leaves",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("proof", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "epoch", "index", name=op.f("pk_settlement_leaves")),
    )
    with op.batch_alter_table("settlement_leaves", schema=None) as batch_op:
        batch_op.create_index("ix_settlement_leaves_account", ["account"], unique=False)

    op.create_table(
        "slash_claims",
        sa.Column("slash_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("index", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slash_id", "index", name=op.f("pk_slash_claims")),
    )
    with op.batch_alter_table("slash_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slash_claims_account"), ["account"], unique=False)

    op.create_table(
        "slashes",
        sa.Column("slash_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("to_impacted", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("impact_root", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("tx_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("slash_id", name=op.f("pk_slashes")),
    )
    with op.batch_alter_table("slashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slashes_account"), ["account"], unique=False)

    op.create_table(
        "stake_usage",
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("units", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("tier", sa.SmallInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_stake_usage")),
    )
    op.create_table(
        "stakes",
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("active", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("unbonding", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("release_at", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_stakes")),
    )
    op.create_table(
        "staking_curves",
        sa.Column("role", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("base", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("per_sqrt_unit", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_staking_curves")),
    )
    op.create_table(
        "stewards",
        sa.Column("broker", workers.db.base.Address(length=42), nullable=False),
        sa.Column("steward", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("broker", name=op.f("pk_stewards")),
    )
    op.create_table(
        "tier_multipliers",
        sa.Column("tier", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("bps", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tier", name=op.f("pk_tier_multipliers")),
    )
    op.create_table(
        "token_balances",
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("balance", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", "account", name=op.f("pk_token_balances")),
    )
    op.create_table(
        "usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=False),
        sa.Column("units", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("included", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage")),
        sa.UniqueConstraint("source", name=op.f("uq_usage_source")),
    )
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.create_index("ix_usage_product_epoch", ["product_id", "epoch", "included"], unique=False)

    op.create_table(
        "vehicle_keys",
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("grantee", workers.db.base.Address(length=42), nullable=False),
        sa.Column("permissions", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("expires_at", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("terms_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("generation", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "grantee", name=op.f("pk_vehicle_keys")),
    )
    with op.batch_alter_table("vehicle_keys", schema=None) as batch_op:
        batch_op.create_index("ix_vehicle_keys_grantee", ["grantee"], unique=False)

    op.create_table(
        "vehicle_users",
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("user", workers.db.base.Address(length=42), nullable=False),
        sa.Column("expires", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("generation", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicle_users")),
    )
    op.create_table(
        "vehicles",
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=True),
        sa.Column("generation", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("connection_id", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("vin_hash", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("burned", sa.Boolean(), nullable=False),
        sa.Column("minted_block", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_vehicles")),
    )
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vehicles_owner"), ["owner"], unique=False)

    op.create_table(
        "whitelist",
        sa.Column("account", workers.db.base.Address(length=42), nullable=False),
        sa.Column("role", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "role", name=op.f("pk_whitelist")),
    )
    op.create_table(
        "settlement_epochs",
        sa.Column("product_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pool", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("pool_block", sa.BigInteger(), nullable=False),
        sa.Column("amount", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("remainder", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("total_units", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("usage_rows", sa.Integer(), nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("root", workers.db.base.Bytes32(length=66), nullable=True),
        sa.Column("tx_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("settled_block", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tx_id"], ["chain_txs.id"], name=op.f("fk_settlement_epochs_tx_id_chain_txs")
        ),
        sa.PrimaryKeyConstraint("product_id", "epoch", name=op.f("pk_settlement_epochs")),
    )


def downgrade() -> None:
    op.drop_table("settlement_epochs")
    op.drop_table("whitelist")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicles_owner"))

    op.drop_table("vehicles")
    op.drop_table("vehicle_users")
    with op.batch_alter_table("vehicle_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_vehicle_keys_grantee")

    op.drop_table("vehicle_keys")
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_product_epoch")

    op.drop_table("usage")
    op.drop_table("token_balances")
    op.drop_table("tier_multipliers")
    op.drop_table("stewards")
    op.drop_table("staking_curves")
    op.drop_table("stakes")
    op.drop_table("stake_usage")
    with op.batch_alter_table("slashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slashes_account"))

    op.drop_table("slashes")
    with op.batch_alter_table("slash_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slash_claims_account"))

    op.drop_table("slash_claims")
    with op.batch_alter_table("settlement_leaves", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_leaves_account")

    op.drop_table("settlement_leaves")
    op.drop_table("settled_epochs")
    op.drop_table("role_members")
    op.drop_table("protocol_params")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_operator"))

    op.drop_table("products")
    op.drop_table("product_terms")
    op.drop_table("pairings")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_product_id"))
        batch_op.drop_index(batch_op.f("ix_orders_buyer"))

    op.drop_table("orders")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_memberships_vehicle")
        batch_op.drop_index(batch_op.f("ix_memberships_owner"))

    op.drop_table("memberships")
    op.drop_table("manufacturers")
    with op.batch_alter_table("indexer_undo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indexer_undo_block_number"))

    op.drop_table("indexer_undo")
    op.drop_table("indexer_cursor")
    op.drop_table("indexer_blocks")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_owner"))

    op.drop_table("devices")
    with op.batch_alter_table("demand_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demand_signals_account"))

    op.drop_table("demand_signals")
    op.drop_table("connections")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_index("ix_claims_product_epoch_account")
        batch_op.drop_index(batch_op.f("ix_claims_account"))

    op.drop_table("claims")
    with op.batch_alter_table("chain_txs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_txs_purpose"))

    op.drop_table("chain_txs")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_events_contract_name")

    op.drop_table("chain_events")
    with op.batch_alter_table("bundle_components", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_components_component_id"))

    op.drop_table("bundle_components")
