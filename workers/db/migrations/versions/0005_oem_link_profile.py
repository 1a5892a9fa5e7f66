"""oem links: make and model

Revision ID: 0005_oem_link_profile
Revises: 0004_oem
Create Date: 2026-11-26 13:19:13.072034
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_oem_link_profile"
down_revision: str | Sequence[str] | None = "0004_oem"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oem_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("make", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oem_links", schema=None) as batch_op:
        batch_op.drop_column("model")
        batch_op.drop_column("make")
