"""What one account earned from each product in each closed period: the share rule replayed
over the stored periods (`settlement_periods` keeps each period's carry in), read-only.

The figures are exact while the index still holds what the period was closed with (the
usage counters and the product's memberships); a vehicle that left since is no longer
counted, so its owner's past periods read zero here although the cumulative claim keeps them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from workers.db.projections import Membership, Order
from workers.db.settlement import SettlementPeriod, UsageCounter
from workers.ledger.periods import members_by_version, order_periods, served_units
from workers.ledger.shares import split_period


@dataclass(frozen=True)
class PeriodEarning:
    product_id: int
    period: int
    amount: int


def member_earnings(session: Session, account: str, period_seconds: int, periods: int) -> list[PeriodEarning]:
    """`account`'s share of each of its products' last `periods` closed periods (zeros
    included), by product then period."""
    address = account.lower()
    products = session.scalars(
        union(
            select(Membership.product_id).where(Membership.owner == address),
            select(UsageCounter.product_id).where(UsageCounter.owner == address),
        )
    ).all()
    out: list[PeriodEarning] = []
    for product_id in sorted(int(p) for p in products):
        closed = session.scalars(
            select(SettlementPeriod)
            .where(SettlementPeriod.product_id == product_id)
            .order_by(SettlementPeriod.period.desc())
            .limit(periods)
        ).all()
        if not closed:
            continue
        first, last = int(closed[-1].period), int(closed[0].period) + 1
        orders = session.scalars(
            select(Order).where(Order.product_id == product_id, Order.member_share.is_not(None))
        ).all()
        served = served_units(session, product_id, first, last)
        members = members_by_version(session, product_id)
        for row in reversed(closed):
            period = int(row.period)
            pieces = order_periods(orders, served.get(period, {}), members, period, period_seconds)
            shares = split_period(pieces, int(row.carry_in))
            out.append(PeriodEarning(product_id, period, shares.payouts.get(address, 0)))
    return out
