"""revocable bearer sessions; onboarding states bound to a session, with a PKCE verifier

Revision ID: 0008_sessions_onboarding
Revises: 0007_gateway_expiries
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_sessions_onboarding"
down_revision: str | Sequence[str] | None = "0007_gateway_expiries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.BigInteger(), nullable=True))

    # States in flight were bound to no session: they cannot complete under the new rule.
    op.execute("DELETE FROM oem_auth_states")
    with op.batch_alter_table("oem_auth_states", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.String(length=32), nullable=False))
        batch_op.add_column(sa.Column("verifier_ciphertext", sa.Text(), nullable=True))
        batch_op.drop_column("used_at")


def downgrade() -> None:
    op.execute("DELETE FROM oem_auth_states")
    with op.batch_alter_table("oem_auth_states", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("used_at", sa.BigInteger(), nullable=True))
        batch_op.drop_column("verifier_ciphertext")
        batch_op.drop_column("session_id")

    with op.batch_alter_table("gateway_sessions", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
