"""The share rule's inputs read from the index, per product: orders' vesting, the usage
counters per period, the memberships by terms version, and each period's pieces (the orders
that released something with the vehicles that served them). Read-only: settlement closes
periods from them (workers.settlement.roots) and the gateway replays a member's earnings
(workers.ledger.earnings) without loading anything that moves money."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workers.db.projections import Membership
from workers.db.settlement import UsageCounter
from workers.ledger.shares import OrderPeriod, Vesting, period_bounds, period_release
from workers.ledger.usage import Served


def vesting_of(order: Any) -> Vesting:
    """An order's vesting as the share rule reads it, from its projection row."""
    return Vesting(
        member_share=int(order.member_share or 0),
        starts_at=int(order.vest_starts_at or 0),
        ends_at=int(order.vest_ends_at or 0),
        refunded_at=None if order.refunded_at is None else int(order.refunded_at),
        refunded_amount=None if order.refunded_amount is None else int(order.refunded_amount),
    )


def overlaps(vesting: Vesting, start: int, end: int) -> bool:
    """Whether the order can release anything in [start, end): its vesting (up to its
    refund) meets the window. A cheap filter before the exact arithmetic."""
    if vesting.pending_delivery:
        return False
    stop = vesting.ends_at if vesting.refunded_at is None else min(vesting.ends_at, vesting.refunded_at)
    return vesting.starts_at < end and stop >= start


def order_periods(
    orders: Any,
    served: dict[int, list[Served]],
    members: dict[int, list[tuple[int, int, str]]],
    period: int,
    period_seconds: int,
) -> list[OrderPeriod]:
    """A product's orders that released something in `period`, each with the vehicles that
    served it, or (when none did) the member vehicles in consent to its terms version that
    joined before the period ended."""
    start, end = period_bounds(period, period_seconds)
    pieces = []
    for order in orders:
        vesting = vesting_of(order)
        if not overlaps(vesting, start, end):
            continue
        release = period_release(vesting, period, period_seconds)
        if release == 0:
            continue
        version = order.terms_version
        consenting = [
            (vehicle, owner)
            for joined, vehicle, owner in members.get(int(version) if version is not None else -1, [])
            if joined < end
        ]
        pieces.append(
            OrderPeriod(
                order_id=int(order.order_id),
                release=release,
                served=served.get(int(order.order_id), ()),
                members=consenting,
            )
        )
    return pieces


def served_units(
    session: Session, product_id: int, first: int, last: int
) -> dict[int, dict[int, list[Served]]]:
    """Per period in [first, last), per order: the vehicles that served it, units summed
    in SQL per (period, order, vehicle, owner)."""
    c = UsageCounter
    rows = session.execute(
        select(c.period, c.order_id, c.vehicle_id, c.owner, func.sum(c.units))
        .where(c.product_id == product_id, c.period >= first, c.period < last)
        .group_by(c.period, c.order_id, c.vehicle_id, c.owner)
        .order_by(c.period, c.order_id, c.vehicle_id, c.owner)
    ).all()
    out: dict[int, dict[int, list[Served]]] = defaultdict(lambda: defaultdict(list))
    for period, order_id, vehicle_id, owner, units in rows:
        out[int(period)][int(order_id)].append(Served(int(vehicle_id), owner, int(units)))
    return out


def members_by_version(session: Session, product_id: int) -> dict[int, list[tuple[int, int, str]]]:
    """The product's member vehicles by the terms version they consented to:
    (joined_at, vehicle, owner)."""
    rows = session.execute(
        select(Membership.version, Membership.joined_at, Membership.vehicle_id, Membership.owner).where(
            Membership.product_id == product_id
        )
    ).all()
    out: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for version, joined_at, vehicle_id, owner in rows:
        out[int(version)].append((int(joined_at or 0), int(vehicle_id), owner))
    return out
