"""The share rule as pure functions (workers/ledger/shares.py), by property: an order's
release follows the Marketplace's scaled arithmetic (SPEC15 §3) to the wei, and a product's
periods never pay more than its orders released, while every wei of a closed period is either
paid or carried to the next."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.ledger import Served
from workers.ledger.shares import (
    PRECISION,
    OrderPeriod,
    Vesting,
    carry_taker,
    period_bounds,
    period_release,
    released,
    released_scaled,
    split_period,
)
from workers.protocol import ZERO_ADDRESS, vesting

DAY = 86_400
ACCOUNTS = ["0x" + f"{i:02x}" * 20 for i in range(1, 7)]


@st.composite
def vestings(draw, *, refundable: bool = True) -> Vesting:
    """Orders as the Marketplace vests them: subscriptions and credits from their start to a
    day-rounded end, datasets all at once at delivery (or not yet delivered)."""
    share = draw(st.integers(0, 10**27))
    kind = draw(st.sampled_from(["linear", "linear", "delivered", "undelivered"]))
    start = draw(st.integers(1, 400 * DAY))
    if kind == "undelivered":
        return Vesting(share, 0, 0)
    if kind == "delivered":
        return Vesting(share, start, start)
    term_end = start + draw(st.integers(1, 400 * DAY))
    end = -(-term_end // DAY) * DAY  # the term's end rounded up to the day
    refunded = draw(st.none() | st.integers(start, end - 1)) if refundable else None
    due = 0 if refunded is None else vesting.refund_due(share, start, term_end, end, refunded)
    if due == 0:  # no refund, or one the chain refuses (NothingToRefund)
        return Vesting(share, start, end)
    return Vesting(share, start, end, refunded, due)


# --- one order's release: the Marketplace's arithmetic --------------------------------------


@given(v=vestings(), times=st.lists(st.integers(0, 900 * DAY), min_size=2, max_size=20))
@settings(max_examples=400, deadline=None)
def test_release_is_monotone_bounded_and_complete_at_the_end(v, times):
    values = [released_scaled(v, t) for t in sorted(times)]
    assert values == sorted(values), "released never decreases"
    assert all(0 <= x <= v.member_share * PRECISION for x in values)
    if v.pending_delivery:
        assert set(values) == {0}
        return
    assert released_scaled(v, v.starts_at - 1) == 0
    if v.refunded_at is None:
        assert released(v, v.ends_at) == v.member_share == released(v, v.ends_at + 10**9)
    else:  # from the refund on, everything the buyer did not take back, forever
        assert v.refunded_amount is not None
        assert (
            released_scaled(v, 10**12)
            == released_scaled(v, v.refunded_at)
            == (v.member_share - v.refunded_amount) * PRECISION
            >= v.rate * (v.refunded_at - v.starts_at)
        )
    if v.starts_at < v.ends_at:
        mid = (v.starts_at + v.ends_at) // 2
        if v.refunded_at is None or mid <= v.refunded_at:
            # exactly the contract's formula: floor(share * PRECISION / duration) * elapsed
            assert released_scaled(v, mid) == v.member_share * PRECISION // (v.ends_at - v.starts_at) * (
                mid - v.starts_at
            )


@given(v=vestings(), period_seconds=st.sampled_from([3_600, DAY, 7 * DAY]))
@settings(max_examples=300, deadline=None)
def test_an_orders_periods_add_up_to_its_release_to_the_wei(v, period_seconds):
    end = max(v.ends_at, v.starts_at) + period_seconds
    periods = range(0, end // period_seconds + 1)
    total = sum(period_release(v, p, period_seconds) for p in periods)
    assert total == released(v, period_bounds(periods[-1], period_seconds)[1])
    assert all(period_release(v, p, period_seconds) >= 0 for p in periods)
    if v.refunded_at is None and not v.pending_delivery:
        assert total == v.member_share


def vested_on_chain(orders: list[Vesting], t: int, checkpoints: list[int]) -> int:
    """The product's vestedScaled at `t` as the Marketplace keeps it: one rate for the product,
    rate drops and dust bumps scheduled at each order's vestEndsAt (Curve's slope changes),
    advanced checkpoint by checkpoint; a refund removes the order's rate and adds at once
    what of the unvested share the buyer does not take back."""
    events: dict[int, list[tuple[str, Vesting]]] = defaultdict(list)
    for v in orders:
        if v.pending_delivery:
            continue
        events[v.starts_at].append(("start", v))
        events[v.ends_at].append(("end", v))
        if v.refunded_at is not None:
            events[v.refunded_at].append(("refund", v))
    rate, vested, last = 0, 0, 0
    stops = sorted({*(c for c in checkpoints if c < t), *(e for e in events if e <= t), t})
    for now in stops:
        vested += rate * (now - last)
        last = now
        for what, v in events.get(now, []):
            refunded = v.refunded_at is not None and v.refunded_at < v.ends_at
            if what == "start" and v.starts_at == v.ends_at:
                vested += v.member_share * PRECISION  # a delivered dataset: all at once
            elif what == "start":
                rate += v.rate
            elif what == "end" and v.starts_at < v.ends_at and not refunded:
                rate -= v.rate
                vested += v.member_share * PRECISION - v.rate * (v.ends_at - v.starts_at)  # the dust
            elif what == "refund" and refunded:
                rate -= v.rate
                unvested = v.member_share * PRECISION - v.rate * (v.refunded_at - v.starts_at)
                vested += unvested - (v.refunded_amount or 0) * PRECISION  # the members keep it
    return vested


@given(
    orders=st.lists(vestings(), min_size=1, max_size=8),
    t=st.integers(0, 900 * DAY),
    checkpoints=st.lists(st.integers(0, 900 * DAY), max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_per_order_releases_never_exceed_the_products_vested_amount(orders, t, checkpoints):
    scaled = vested_on_chain(orders, t, checkpoints)
    # The product's scaled sum is exactly the orders' (a refunded order's: all but its refund) …
    assert scaled == sum(released_scaled(v, t) for v in orders)
    # … so the per-order floors the workers pay never exceed vestedMemberAmount.
    assert sum(released(v, t) for v in orders) <= scaled // PRECISION


# --- one product's period: shares ----------------------------------------------------------

owners = st.sampled_from([*ACCOUNTS, ZERO_ADDRESS])
served_lists = st.lists(
    st.builds(Served, vehicle_id=st.integers(1, 20), owner=owners, units=st.integers(0, 10**6)), max_size=12
)
member_lists = st.lists(
    st.tuples(st.integers(1, 20), st.sampled_from(ACCOUNTS)), max_size=8, unique_by=lambda m: m[0]
)
order_periods = st.lists(
    st.builds(
        OrderPeriod,
        order_id=st.integers(1, 50),
        release=st.integers(0, 10**24),
        served=served_lists,
        members=member_lists,
    ),
    max_size=6,
    unique_by=lambda o: o.order_id,
)


def expected_payouts(orders: list[OrderPeriod], carry: int) -> dict[str, int]:
    """The rule written out once more, plainly: floor(amount * units / total) per vehicle."""
    taker = min(orders, key=lambda o: (-o.release, o.order_id)).order_id if orders else None
    out: dict[str, int] = defaultdict(int)
    for o in orders:
        amount = o.release + (carry if o.order_id == taker else 0)
        weights: dict[tuple[int, str], int] = defaultdict(int)
        for s in o.served:
            weights[(s.vehicle_id, s.owner)] += s.units
        weights = {k: w for k, w in weights.items() if w}
        if not weights:
            weights = {(v, a): 1 for v, a in o.members}
        total = sum(weights.values())
        for (_v, owner), w in weights.items():
            if owner != ZERO_ADDRESS and total and amount * w // total:
                out[owner] += amount * w // total
    return dict(out)


@given(orders=order_periods, carry=st.integers(0, 10**20))
@settings(max_examples=500, deadline=None)
def test_a_period_never_pays_more_than_it_released_and_carries_the_rest(orders, carry):
    shares = split_period(orders, carry)
    released_now = sum(o.release for o in orders)
    assert shares.released == released_now
    assert shares.payouts == expected_payouts(orders, carry)
    assert 0 <= shares.paid <= released_now + carry
    assert shares.paid + shares.carry_out == released_now + carry  # every wei paid or carried
    # What carries is rounding (under one wei per paid vehicle and order), the unowned
    # vehicles' share, and orders nobody served and no member can take.
    unpaid_bound = carry if not orders else 0
    for o in orders:
        amount = o.release + (carry if o.order_id == carry_taker(orders) else 0)
        weights: dict[tuple[int, str], int] = defaultdict(int)
        for s in o.served:
            weights[(s.vehicle_id, s.owner)] += s.units
        weights = {k: w for k, w in weights.items() if w} or {(v, a): 1 for v, a in o.members}
        total = sum(weights.values())
        if not total:
            unpaid_bound += amount
            continue
        unowned = sum(w for (_v, owner), w in weights.items() if owner == ZERO_ADDRESS)
        unpaid_bound += len(weights) + amount * unowned // total
    assert shares.carry_out <= unpaid_bound


def test_shares_follow_units_and_an_unserved_order_pays_its_members_equally():
    a, b, c = ACCOUNTS[:3]
    served = OrderPeriod(1, 1_000, served=[Served(1, a, 1), Served(2, b, 2), Served(3, b, 0)])
    unserved = OrderPeriod(2, 90, members=[(4, c), (5, a), (6, c)])
    shares = split_period([served, unserved], carry=7)
    # order 1 (largest release) takes the carry: 1,007 by units 1:2; order 2 pays 30 a member.
    assert shares.payouts == {a: 335 + 30, b: 671, c: 60}
    assert shares.carry_out == 1_007 + 90 - (335 + 671) - 90 == 1
    nobody = split_period([OrderPeriod(3, 50)], carry=0)  # nobody served, no member: all carries
    assert nobody.payouts == {} and nobody.carry_out == 50
    with pytest.raises(ValueError, match="negative"):
        split_period([OrderPeriod(4, -1)], carry=0)


@given(
    orders=st.lists(vestings(), min_size=1, max_size=5),
    usage=st.dictionaries(st.tuples(st.integers(0, 4), st.integers(0, 60)), served_lists, max_size=30),
    members=member_lists,
)
@settings(max_examples=200, deadline=None)
def test_closing_period_after_period_pays_at_most_what_vested(orders, usage, members):
    period_seconds = 10 * DAY
    last = max(max(v.ends_at, v.starts_at) for v in orders) // period_seconds + 2
    carry, paid = 0, 0
    for period in range(last):
        pieces = [
            OrderPeriod(i, period_release(v, period, period_seconds), usage.get((i, period), ()), members)
            for i, v in enumerate(orders)
            if period_release(v, period, period_seconds)
        ]
        shares = split_period(pieces, carry)
        carry, paid = shares.carry_out, paid + shares.paid
        end = period_bounds(period, period_seconds)[1]
        assert paid + carry == sum(released(v, end) for v in orders)
        assert paid <= vested_on_chain(orders, end, []) // PRECISION
