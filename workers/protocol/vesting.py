"""The Marketplace's vesting of an order's member share (SPEC15 §3), to the wei, for readers
that must not import settlement (the gateway's order view):

    rate               = memberShare * PRECISION // (vestEndsAt - vestStartsAt)
    releasedScaled(t)  = 0                          t <= vestStartsAt
                       = rate * (t - vestStartsAt)  vestStartsAt < t < vestEndsAt
                       = memberShare * PRECISION    t >= vestEndsAt
    released(t)        = releasedScaled(t) // PRECISION             t < refundedAt
                       = memberShare - refundedAmount                  t >= refundedAt

A refund pays the buyer the unserved part of the order's own term (`refund_due`, nothing once
the term ended); the members keep the rest of the share at the refund's moment. A dataset order
vests nothing until delivered (both times 0), then all at once.
"""

from __future__ import annotations

from workers.protocol.constants import VESTING_PRECISION


def released_scaled(
    member_share: int,
    starts_at: int,
    ends_at: int,
    t: int,
    *,
    refunded_at: int | None = None,
    refunded_amount: int | None = None,
) -> int:
    """What the order has released by time `t`, scaled by VESTING_PRECISION; from a refund on,
    everything the buyer did not take back (`refunded_amount`, as the Refunded event says)."""
    if starts_at == 0 and ends_at == 0:
        return 0  # a dataset not delivered yet (or refunded before its delivery)
    if refunded_at is not None and refunded_at < ends_at and t >= refunded_at:
        return (member_share - (refunded_amount or 0)) * VESTING_PRECISION
    if t >= ends_at:
        return member_share * VESTING_PRECISION
    if t <= starts_at:
        return 0
    return member_share * VESTING_PRECISION // (ends_at - starts_at) * (t - starts_at)


def released(
    member_share: int,
    starts_at: int,
    ends_at: int,
    t: int,
    *,
    refunded_at: int | None = None,
    refunded_amount: int | None = None,
) -> int:
    """Whole wei of the member share released by time `t` (never more than the share)."""
    scaled = released_scaled(
        member_share, starts_at, ends_at, t, refunded_at=refunded_at, refunded_amount=refunded_amount
    )
    return scaled // VESTING_PRECISION


def refund_due(member_share: int, starts_at: int, term_ends_at: int, vest_ends_at: int, t: int) -> int:
    """What `Marketplace.refund` pays at `t` for an order vesting over its term (Vesting.splitRefund):
    the unserved part of the term, `memberShare * (termEnd - t) / (termEnd - start)` rounded down,
    nothing once the term ended, never above the whole unvested wei."""
    if t >= term_ends_at:
        return 0
    unvested = member_share * VESTING_PRECISION - released_scaled(member_share, starts_at, vest_ends_at, t)
    unserved = member_share * (term_ends_at - t) // (term_ends_at - starts_at)
    return min(unserved, unvested // VESTING_PRECISION)
