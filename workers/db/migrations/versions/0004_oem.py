"""oem: onboarding states, links, device payloads and sequences, commands

Revision ID: 0004_oem
Revises: 0003_signals
Create Date: 2026-11-26 13:15:55.501749
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workers.db.base

revision: str = "0004_oem"
down_revision: str | Sequence[str] | None = "0003_signals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_payloads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("sequence", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("payload_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("signer", workers.db.base.Address(length=42), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_payloads")),
        sa.UniqueConstraint("device_id", "sequence", name="uq_device_payloads_device_sequence"),
    )
    with op.batch_alter_table("device_payloads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_payloads_vehicle_id"), ["vehicle_id"], unique=False)

    op.create_table(
        "device_sequences",
        sa.Column("device_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("last_sequence", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_sequences")),
    )
    op.create_table(
        "oem_auth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("connection_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oem_auth_states")),
    )
    with op.batch_alter_table("oem_auth_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oem_auth_states_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "oem_commands",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("caller", workers.db.base.Address(length=42), nullable=False),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_oem_commands")),
    )
    with op.batch_alter_table("oem_commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oem_commands_vehicle_id"), ["vehicle_id"], unique=False)

    op.create_table(
        "oem_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection_id", workers.db.base.UInt(length=78), nullable=False),
        sa.Column("vin_hash", workers.db.base.Bytes32(length=66), nullable=False),
        sa.Column("vin_ciphertext", sa.Text(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("owner", workers.db.base.Address(length=42), nullable=False),
        sa.Column("vehicle_id", workers.db.base.UInt(length=78), nullable=True),
        sa.Column("tokens_ciphertext", sa.Text(), nullable=False),
        sa.Column("token_expires_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("scheduled_at", sa.BigInteger(), nullable=True),
        sa.Column("last_pull_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oem_links")),
        sa.UniqueConstraint("connection_id", "vin_hash", name="uq_oem_links_connection_vin"),
    )
    with op.batch_alter_table("oem_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oem_links_vehicle_id"), ["vehicle_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oem_links_vin_hash"), ["vin_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oem_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oem_links_vin_hash"))
        batch_op.drop_index(batch_op.f("ix_oem_links_vehicle_id"))

    op.drop_table("oem_links")
    with op.batch_alter_table("oem_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oem_commands_vehicle_id"))

    op.drop_table("oem_commands")
    with op.batch_alter_table("oem_auth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oem_auth_states_expires_at"))

    op.drop_table("oem_auth_states")
    op.drop_table("device_sequences")
    with op.batch_alter_table("device_payloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_payloads_vehicle_id"))

    op.drop_table("device_payloads")
