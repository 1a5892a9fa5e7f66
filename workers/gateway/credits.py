"""API credits: one credit per metered call that returns signals, spent atomically.

A spend is a single conditional `UPDATE … SET remaining = remaining - 1 WHERE … AND
remaining > 0 RETURNING remaining`: on SQLite (writers serialised by BEGIN IMMEDIATE) and on
PostgreSQL (row lock on UPDATE, the WHERE re-checked after the lock) two concurrent calls can
never both take the last credit. The counter row of an order is created on first use from
the order's allowance (INSERT … ON CONFLICT DO NOTHING, so concurrent first uses agree)."""

from __future__ import annotations

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from workers.access.rule import Entitlement
from workers.db import upsert
from workers.db.gateway import ApiCredit

#: Largest expiry a BIGINT holds; orders that never end (uint64 max on chain) are stored as 0.
MAX_EXPIRY = 2**63 - 1


def ensure_counter(session: Session, ent: Entitlement) -> None:
    """Creates the order's counter with its full allowance unless it exists."""
    session.execute(
        upsert(session, ApiCredit, key=("order_id", "product_id")),
        {
            "order_id": ent.order.order_id,
            "product_id": ent.product_id,
            "buyer": ent.order.buyer,
            "total": ent.allowance,
            "remaining": ent.allowance,
            "expires_at": ent.order.ends_at if ent.order.ends_at <= MAX_EXPIRY else 0,
            "expired": False,
        },
    )


_DECREMENT = (
    update(ApiCredit)
    .where(
        ApiCredit.order_id == bindparam("o"),
        ApiCredit.product_id == bindparam("p"),
        ApiCredit.remaining > 0,
        ApiCredit.expired.is_(False),
    )
    .values(remaining=ApiCredit.remaining - 1)
    .returning(ApiCredit.remaining)
)
_EXISTS = select(ApiCredit.order_id).where(
    ApiCredit.order_id == bindparam("o"), ApiCredit.product_id == bindparam("p")
)


def _decrement(session: Session, ent: Entitlement) -> int | None:
    row = session.connection().execute(_DECREMENT, {"o": ent.order.order_id, "p": ent.product_id}).first()
    return None if row is None else int(row[0])


def spend_credit(session: Session, ent: Entitlement) -> int | None:
    """Takes one credit of `ent`'s order; the credits left after it, or None when none was left."""
    left = _decrement(session, ent)
    if left is not None:
        return left
    exists = session.connection().execute(_EXISTS, {"o": ent.order.order_id, "p": ent.product_id}).first()
    if exists is None:
        ensure_counter(session, ent)
    # again either way: a concurrent first use may have created the counter since the first try
    return _decrement(session, ent)


def in_spending_order(entitlements: tuple[Entitlement, ...]) -> list[Entitlement]:
    """The order in which entitlements pay for a call: the earliest-ending order first."""
    return sorted(entitlements, key=lambda e: (e.order.ended_at, e.order.order_id))
