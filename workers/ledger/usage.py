"""Usage rows: one contribution of one vehicle's data to a product in an epoch, written once
by whoever served it and taken once by the settlement of that epoch (table `usage`,
`workers.db.settlement.Usage`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from workers.db import for_update, upsert
from workers.db.settlement import Usage
from workers.protocol import ZERO_ADDRESS

#: Rows marked as taken per UPDATE (keeps each statement's parameter list bounded).
_TAKE_CHUNK = 1_000


class UsageKind(StrEnum):
    """What a usage row counts (DESIGN.md §4, member shares)."""

    #: A member-day: one vehicle served on a stream on one day.
    STREAM = "stream"
    #: One metered call answered with the vehicle's data.
    API = "api"
    #: One vehicle's contribution to a published dataset.
    DATASET = "dataset"


@dataclass(frozen=True)
class Contribution:
    """Units one vehicle contributed while `owner` owned it (one or more usage rows)."""

    vehicle_id: int
    owner: str
    units: int


def epoch_of(timestamp: int, epoch_seconds: int) -> int:
    """The settlement epoch a moment falls in: floor(timestamp / EPOCH_SECONDS)."""
    return timestamp // epoch_seconds


def record_usage(
    session: Session,
    kind: UsageKind,
    key: Sequence[object],
    *,
    product_id: int,
    vehicle_id: int,
    owner: str | None,
    epoch: int,
    units: int = 1,
) -> None:
    """Counts, in the caller's transaction, one contribution of `vehicle_id`'s data to the
    member pool of `product_id` in `epoch`, to be paid to `owner` (the vehicle's owner when it
    was served; None when unknown: counted, paid to nobody).

    `key` names the contribution among those of its kind (an order's n-th credit, an order's
    vehicle-day, a job's vehicle): `kind:part:part…` is the row's idempotency key, and
    recording the same contribution again changes nothing."""
    session.connection().execute(
        upsert(session, Usage, key=("source",)),
        {
            "product_id": product_id,
            "epoch": epoch,
            "vehicle_id": vehicle_id,
            "owner": owner or ZERO_ADDRESS,
            "units": units,
            "kind": kind.value,
            "source": ":".join((kind.value, *map(str, key))),
            "included": False,
        },
    )


def latest_untaken_epochs(session: Session, before_epoch: int) -> dict[int, int]:
    """Per product with usage not yet taken in epochs before `before_epoch`: the latest such
    epoch."""
    rows = session.execute(
        select(Usage.product_id, func.max(Usage.epoch))
        .where(Usage.included.is_(False), Usage.epoch < before_epoch)
        .group_by(Usage.product_id)
    ).all()
    return {int(product_id): int(epoch) for product_id, epoch in rows}


def take_usage(session: Session, product_id: int, epoch: int) -> list[Contribution]:
    """The committed usage of `product_id` up to `epoch` not taken yet (rows of earlier epochs
    that arrived after those were settled included), marked as taken in the caller's
    transaction: each row is taken by one settlement, once."""
    query = select(Usage.id, Usage.vehicle_id, Usage.owner, Usage.units).where(
        Usage.product_id == product_id, Usage.epoch <= epoch, Usage.included.is_(False)
    )
    rows = session.execute(for_update(query)).all()
    ids = [r.id for r in rows]
    for start in range(0, len(ids), _TAKE_CHUNK):
        session.execute(
            update(Usage).where(Usage.id.in_(ids[start : start + _TAKE_CHUNK])).values(included=True)
        )
    return [Contribution(r.vehicle_id, r.owner, r.units) for r in rows]
