"""dataset privacy: a per-order differential-privacy budget; an order may queue several
dataset jobs (each records the epsilon it spent) instead of one

Revision ID: 0011_dataset_privacy_budget
Revises: 0008_sessions_onboarding
Create Date: 2026-12-06 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_dataset_privacy_budget"
down_revision: str | Sequence[str] | None = "0010_indexer_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_dataset_budgets",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("epsilon_total", sa.Float(), nullable=False),
        sa.Column("epsilon_spent", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_gateway_dataset_budgets")),
    )
    # Results built before this revision published exact single-vehicle values (min, max):
    # they are withdrawn, and jobs still to build hold no budget; their buyers queue again.
    op.execute(
        "UPDATE gateway_dataset_jobs SET result = NULL, status = 'refused', reason = 'withdrawn',"
        " detail = 'built or queued without differential privacy: queue it again'"
        " WHERE status <> 'refused'"
    )
    with op.batch_alter_table("gateway_dataset_jobs", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("epsilon", sa.Float(), nullable=False, server_default="0"))
        batch_op.drop_constraint("uq_gateway_dataset_jobs_order_product", type_="unique")
        batch_op.create_index(
            "ix_gateway_dataset_jobs_order_product", ["order_id", "product_id"], unique=False
        )
    with op.batch_alter_table("gateway_dataset_jobs", schema=None) as batch_op:
        batch_op.alter_column("epsilon", server_default=None)


def downgrade() -> None:
    # One job per order and product again: keep each pair's earliest.
    op.execute(
        "DELETE FROM gateway_dataset_jobs WHERE id NOT IN ("
        " SELECT MIN(id) FROM gateway_dataset_jobs GROUP BY order_id, product_id)"
    )
    with op.batch_alter_table("gateway_dataset_jobs", schema=None, recreate="always") as batch_op:
        batch_op.drop_index("ix_gateway_dataset_jobs_order_product")
        batch_op.create_unique_constraint("uq_gateway_dataset_jobs_order_product", ["order_id", "product_id"])
        batch_op.drop_column("epsilon")
    op.drop_table("gateway_dataset_budgets")
