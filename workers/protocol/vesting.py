"""The Marketplace's vesting of an order's member share (SPEC15 §3), to the wei, for readers
that must not import settlement (the gateway's order view):

    rate               = memberShare * PRECISION // (vestEndsAt - vestStartsAt)
    releasedScaled(t)  = 0                          t <= vestStartsAt
                       = rate * (t - vestStartsAt)  vestStartsAt < t < vestEndsAt
                       = memberShare * PRECISION    t >= vestEndsAt
    released(t)        = releasedScaled(min(t, refundedAt)) // PRECISION

A dataset order vests nothing until delivered (both times 0), then all at once.
"""

from __future__ import annotations

from workers.protocol.constants import VESTING_PRECISION


def released_scaled(
    member_share: int, starts_at: int, ends_at: int, t: int, refunded_at: int | None = None
) -> int:
    """What the order has released by time `t`, scaled by VESTING_PRECISION."""
    if starts_at == 0 and ends_at == 0:
        return 0  # a dataset not delivered yet
    if refunded_at is not None and refunded_at < ends_at:
        t = min(t, refunded_at)
    if t >= ends_at:
        return member_share * VESTING_PRECISION
    if t <= starts_at:
        return 0
    return member_share * VESTING_PRECISION // (ends_at - starts_at) * (t - starts_at)


def released(member_share: int, starts_at: int, ends_at: int, t: int, refunded_at: int | None = None) -> int:
    """Whole wei of the member share released by time `t` (never more than the share)."""
    return released_scaled(member_share, starts_at, ends_at, t, refunded_at) // VESTING_PRECISION
