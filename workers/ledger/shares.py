"""The share rule (DESIGN.md §4, SPEC15 §3 and §7), as pure functions.

Each order's member share vests on chain linearly from vestStartsAt to vestEndsAt (a dataset's
all at once at delivery). The rule reproduces the Marketplace's scaled arithmetic exactly:

    rate               = memberShare * PRECISION // (vestEndsAt - vestStartsAt)
    releasedScaled(t)  = 0                          t <= vestStartsAt
                       = rate * (t - vestStartsAt)  vestStartsAt < t < vestEndsAt
                       = memberShare * PRECISION    t >= vestEndsAt
    released(t)        = releasedScaled(t) // PRECISION             t < refundedAt
                       = memberShare - refundedAmount                  t >= refundedAt

A refund pays the buyer the unserved part of the order's term; the members keep the rest at
that moment, which the chain adds to the product's vested amount at once. The product's
`vestedMemberAmount` is floor(Σ releasedScaled / PRECISION) over its orders, so the sum of
the per-order floors here is never above it.

A closed period of an order pays the order's release in that period, released(end) -
released(start), to the vehicles that served that order in the period in proportion to their
units (paid to the owner recorded with the usage); a period in which the order served nothing
pays every member vehicle of the product in consent equally. Every share rounds down; what
rounding leaves (and the share of a vehicle with no known owner) carries to the product's next
period, where it joins the order with the largest release. Over the periods, every wei
released is either paid or carried.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from workers.ledger.usage import Served
from workers.protocol import ZERO_ADDRESS, vesting
from workers.protocol.constants import VESTING_PRECISION

#: The Marketplace's fixed-point scale of vesting rates (SPEC15 §3).
PRECISION = VESTING_PRECISION


@dataclass(frozen=True)
class Vesting:
    """An order's vesting as the Marketplace records it (OrderVesting, Refunded)."""

    member_share: int
    starts_at: int
    ends_at: int
    #: When the buyer took the unserved part of the term back: from there on the order has
    #: released everything but `refunded_amount`.
    refunded_at: int | None = None
    refunded_amount: int | None = None

    @property
    def pending_delivery(self) -> bool:
        """A dataset order not delivered yet: nothing vests (both times are 0)."""
        return self.starts_at == 0 and self.ends_at == 0

    @property
    def rate(self) -> int:
        """Scaled wei per second (floor); 0 when the share vests at once."""
        duration = self.ends_at - self.starts_at
        return self.member_share * PRECISION // duration if duration > 0 else 0


def released_scaled(order: Vesting, t: int) -> int:
    """What the order has released by time `t`, scaled by PRECISION (SPEC15 §3; the one
    implementation is `workers.protocol.vesting`, which the gateway shares)."""
    return vesting.released_scaled(
        order.member_share,
        order.starts_at,
        order.ends_at,
        t,
        refunded_at=order.refunded_at,
        refunded_amount=order.refunded_amount,
    )


def released(order: Vesting, t: int) -> int:
    """Whole wei the order has released by time `t`."""
    return released_scaled(order, t) // PRECISION


def period_bounds(period: int, period_seconds: int) -> tuple[int, int]:
    """[start, end) of a period: period = floor(t / EPOCH_SECONDS)."""
    return period * period_seconds, (period + 1) * period_seconds


def period_release(order: Vesting, period: int, period_seconds: int) -> int:
    """What the order releases in `period`: released(end) - released(start); the periods of an
    order add up to its released amount, to the wei."""
    start, end = period_bounds(period, period_seconds)
    return released(order, end) - released(order, start)


@dataclass(frozen=True)
class OrderPeriod:
    """One order in one closed period: what it released and who served it."""

    order_id: int
    release: int
    served: Sequence[Served] = ()
    #: (vehicle, owner) of every member vehicle in consent to the order's terms during the
    #: period: paid equally when nobody served the order.
    members: Sequence[tuple[int, str]] = ()


@dataclass(frozen=True)
class PeriodShares:
    """One product's closed period: what each account is owed from it, and what carries on."""

    released: int
    carry_in: int
    payouts: Mapping[str, int] = field(default_factory=dict)

    @property
    def paid(self) -> int:
        return sum(self.payouts.values())

    @property
    def carry_out(self) -> int:
        return self.released + self.carry_in - self.paid


def _weights(order: OrderPeriod) -> dict[tuple[int, str], int]:
    served: dict[tuple[int, str], int] = defaultdict(int)
    for s in order.served:
        if s.units < 0:
            raise ValueError(
                f"vehicle {s.vehicle_id} served order {order.order_id} negative units ({s.units})"
            )
        if s.units:
            served[(s.vehicle_id, s.owner.lower())] += s.units
    if served:
        return served
    return {(vehicle_id, owner.lower()): 1 for vehicle_id, owner in order.members}


def carry_taker(orders: Iterable[OrderPeriod]) -> int | None:
    """The order the carried remainder joins: the largest release, the lowest id on a tie."""
    best = min(orders, key=lambda o: (-o.release, o.order_id), default=None)
    return None if best is None else best.order_id


def split_period(orders: Sequence[OrderPeriod], carry: int) -> PeriodShares:
    """The shares of one product's closed period.

    `orders`: the product's orders that released something in the period, each with who
    served it and the members an order that served nothing pays equally; `carry`: what the
    product's previous period left. Each vehicle gets floor(amount * units / total units) of
    each order's amount (its release, plus the carry for the largest release)."""
    if carry < 0 or any(o.release < 0 for o in orders):
        raise ValueError("releases and the carry cannot be negative")
    taker = carry_taker(orders)
    payouts: dict[str, int] = defaultdict(int)
    for order in orders:
        amount = order.release + (carry if order.order_id == taker else 0)
        weights = _weights(order)
        total = sum(weights.values())
        if amount == 0 or total == 0:
            continue
        for (_vehicle, owner), units in weights.items():
            share = amount * units // total
            if owner != ZERO_ADDRESS and share:
                payouts[owner] += share
    shares = PeriodShares(released=sum(o.release for o in orders), carry_in=carry, payouts=dict(payouts))
    assert shares.paid <= shares.released + carry, "shares exceed what the period released"
    return shares
