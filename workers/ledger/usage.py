"""Usage counters: what each vehicle served each order of a product in each period, written by
whoever served it (table `usage_counters`, `workers.db.settlement.UsageCounter`) and read,
aggregated in SQL, by the settlement of the period."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workers.db import upsert
from workers.db.settlement import UsageCounter
from workers.protocol import ZERO_ADDRESS


class UsageKind(StrEnum):
    """What a counter counts (DESIGN.md §4, member shares)."""

    #: A member-day: one vehicle served on a stream in a period, counted once.
    STREAM = "stream"
    #: Metered calls answered with the vehicle's data: each adds its units.
    API = "api"
    #: One vehicle's contribution to a dataset, counted once.
    DATASET = "dataset"


@dataclass(frozen=True)
class Served:
    """Units one vehicle served one order in a period, paid to `owner` (the owner recorded
    with the usage; the zero address when it was unknown: counted, paid to nobody)."""

    vehicle_id: int
    owner: str
    units: int


#: Kinds counted once per (order, vehicle, period) however often they are recorded.
ONCE_PER_PERIOD = frozenset({UsageKind.STREAM, UsageKind.DATASET})


def period_of(timestamp: int, period_seconds: int) -> int:
    """The settlement period a moment falls in: floor(timestamp / EPOCH_SECONDS)."""
    return timestamp // period_seconds


def record_usage(
    session: Session,
    kind: UsageKind,
    *,
    product_id: int,
    order_id: int,
    vehicle_id: int,
    owner: str | None,
    period: int,
    units: int = 1,
) -> None:
    """Counts, in the caller's transaction, that `vehicle_id` served order `order_id` of
    `product_id` (the product the vehicle consented to) in `period`, to be paid to `owner`
    (the vehicle's owner when served; None when unknown: counted, paid to nobody).

    Metered calls (API) add `units`; stream member-days and dataset rows (STREAM, DATASET)
    count `units` once per (order, vehicle, period, owner): a retry changes nothing."""
    if units <= 0:
        raise ValueError(f"usage counts positive units, not {units}")
    once = kind in ONCE_PER_PERIOD
    session.connection().execute(
        upsert(session, UsageCounter, add=() if once else ("units",)),
        {
            "product_id": product_id,
            "order_id": order_id,
            "vehicle_id": vehicle_id,
            "period": period,
            "owner": (owner or ZERO_ADDRESS).lower(),
            "units": units,
        },
    )


def served_in(session: Session, product_id: int, period: int) -> dict[int, list[Served]]:
    """Per order of `product_id`: the vehicles that served it in `period`, with their units
    summed in SQL per (order, vehicle, owner)."""
    rows = session.execute(
        select(
            UsageCounter.order_id, UsageCounter.vehicle_id, UsageCounter.owner, func.sum(UsageCounter.units)
        )
        .where(UsageCounter.product_id == product_id, UsageCounter.period == period)
        .group_by(UsageCounter.order_id, UsageCounter.vehicle_id, UsageCounter.owner)
        .order_by(UsageCounter.order_id, UsageCounter.vehicle_id, UsageCounter.owner)
    ).all()
    served: dict[int, list[Served]] = defaultdict(list)
    for order_id, vehicle_id, owner, units in rows:
        served[int(order_id)].append(Served(int(vehicle_id), owner, int(units)))
    return dict(served)


def periods_with_usage(session: Session, product_id: int, from_period: int, to_period: int) -> list[int]:
    """The periods in [from_period, to_period) in which `product_id` served anything."""
    return [
        int(p)
        for p in session.scalars(
            select(UsageCounter.period)
            .where(
                UsageCounter.product_id == product_id,
                UsageCounter.period >= from_period,
                UsageCounter.period < to_period,
            )
            .distinct()
            .order_by(UsageCounter.period)
        )
    ]
