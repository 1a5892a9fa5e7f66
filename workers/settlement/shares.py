"""Members' shares of one epoch (DESIGN.md §4): the epoch's amount is divided among the
vehicles whose data was sold in it, by contribution, paid to each vehicle's owner at the time
of contribution, every share rounded down; what rounding leaves stays in the pool for the
next epoch, so the leaves never add up to more than the pool."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from workers.ledger import Contribution
from workers.protocol import ZERO_ADDRESS


@dataclass(frozen=True)
class Shares:
    """One leaf `(index, account, amount)` per paid owner, by account order."""

    leaves: list[tuple[int, str, int]]
    total_units: int
    pool: int

    @property
    def amount(self) -> int:
        return sum(amount for _, _, amount in self.leaves)

    @property
    def remainder(self) -> int:
        return self.pool - self.amount


def compute_shares(pool: int, contributions: Iterable[Contribution]) -> Shares:
    """Splits `pool` over the contributions: each (vehicle, owner) gets
    floor(pool * units / total units); an owner's shares add up into one leaf. Contributions
    without an owner (zero address) count in the total but are paid to nobody."""
    if pool < 0:
        raise ValueError(f"a pool cannot be negative ({pool})")
    units: dict[tuple[int, str], int] = defaultdict(int)
    for c in contributions:
        if c.units < 0:
            raise ValueError(f"vehicle {c.vehicle_id} has negative units ({c.units})")
        units[(c.vehicle_id, c.owner.lower())] += c.units
    total = sum(units.values())
    by_owner: dict[str, int] = defaultdict(int)
    if total > 0:
        for (_vehicle, owner), n in units.items():
            if owner != ZERO_ADDRESS:
                by_owner[owner] += pool * n // total
    paid = sorted((owner, amount) for owner, amount in by_owner.items() if amount > 0)
    leaves = [(i, owner, amount) for i, (owner, amount) in enumerate(paid)]
    shares = Shares(leaves=leaves, total_units=total, pool=pool)
    assert shares.amount <= pool, "shares exceed the pool"
    return shares
