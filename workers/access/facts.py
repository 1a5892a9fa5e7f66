"""The access rule's `Facts` answered from the indexer's projections, as of the last block
the indexer applied, with a short-TTL cache keyed on that block.

Everything but credits and staking activity comes from the projections (products, bundle
components, memberships for version and generation with their join time, vehicles with the
start of their current tenure, orders). Operator and buyer activity is `Staking.isActive`
read at the indexer's block (the lockup arithmetic stays the chain's).
Credits are read from the gateway's counters, never cached: they change on every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from workers.access.rule import Decision, Entitlement, OrderFacts, ProductFacts, Purpose, may_read
from workers.db.gateway import ApiCredit, VehicleProfile
from workers.db.indexing import IndexedBlock, IndexerCursor
from workers.db.projections import BundleComponent, Membership, Order, Product, Vehicle
from workers.protocol import UINT256_MAX, Kind, Role

_CREDITS = select(ApiCredit.remaining, ApiCredit.expired).where(
    ApiCredit.order_id == bindparam("order_id"), ApiCredit.product_id == bindparam("product_id")
)

#: Later than any order's end: a decision no order's time bounds.
END_OF_TIME = 2**256

#: A function answering `Staking.isActive(account, role)` at a block number.
StakingCheck = Callable[[str, Role, int], bool]


@dataclass(frozen=True)
class IndexedHead:
    """The last block the indexer applied (and its timestamp, when recorded). The hash is
    part of it: a reorg re-applied to the same height is another head."""

    number: int
    timestamp: int
    hash: str | None = None


def indexed_head(session: Session) -> IndexedHead:
    row = session.execute(
        select(IndexerCursor.last_block, IndexerCursor.last_hash)
        .order_by(IndexerCursor.last_block.desc())
        .limit(1)
    ).first()
    if row is None:
        return IndexedHead(-1, 0)
    cursor, last_hash = row
    ts = session.execute(
        select(IndexedBlock.timestamp)
        .where(IndexedBlock.number <= cursor, IndexedBlock.timestamp.is_not(None))
        .order_by(IndexedBlock.number.desc())
        .limit(1)
    ).scalar()
    return IndexedHead(int(cursor), int(ts or 0), last_hash)


@dataclass
class FactsCache:
    """Per-process memo of facts for one indexed block; dropped when the block changes.

    The indexer's head is re-read at most every `ttl` seconds (0: on every request)."""

    ttl: float
    head: IndexedHead = field(default_factory=lambda: IndexedHead(-1, 0))
    checked_at: float = -1e18
    values: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    #: (order, product) counters seen empty: credits never come back.
    exhausted: set[tuple[int, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark_exhausted(self, key: tuple[int, int]) -> None:
        """A counter seen empty: remembered for good, and every memoised decision (which may
        have counted on its credits) is dropped."""
        with self.lock:
            if key not in self.exhausted:
                self.exhausted.add(key)
                self.values = {k: v for k, v in self.values.items() if k[0] != "decision"}

    def decision(
        self, head: IndexedHead, key: tuple[Any, ...], now: int, decide: Callable[[], tuple[Any, int]]
    ) -> Any:
        """The memo of a decision for `head`: `decide` answers (decision, until), `until`
        being the first instant the decision may change without a new block (an order
        starting, ending or refunded). Reused while the head is the same, `now` is before
        `until` and no counter has been seen empty since (`mark_exhausted`)."""
        slot = ("decision", *key)
        memo = self.values.get(slot) if head == self.head else None
        if memo is not None and now < memo[1]:
            return memo[0]
        seen_empty = len(self.exhausted)
        decision, until = decide()
        with self.lock:
            if head == self.head and seen_empty == len(self.exhausted):
                self.values[slot] = (decision, until)
        return decision

    def refresh(self, session: Session) -> IndexedHead:
        now = time.monotonic()
        if now - self.checked_at < self.ttl:
            return self.head
        head = indexed_head(session)
        with self.lock:
            if head != self.head:
                self.values = {}
                self.head = head
            self.checked_at = now
        return head

    def get(self, head: IndexedHead, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """The memo of `key` for `head`, the block the asking request reads at. A request whose
        block is no longer the cache's computes without the memo: its session may see the
        projections as of its own block (SQLite reads from a snapshot), and a fact read before
        the indexer applied a block must never be served as that block's (a sale's tenure)."""
        values = self.values
        if head != self.head:
            return compute()
        if key in values:
            return values[key]
        value = compute()
        with self.lock:
            if head == self.head and values is self.values:
                values[key] = value
        return value


def _product_facts(row: Product, components: list[BundleComponent]) -> ProductFacts:
    ordered = sorted(components, key=lambda c: c.position)
    return ProductFacts(
        product_id=int(row.product_id),
        operator=row.operator,
        version=int(row.version),
        active=bool(row.active),
        kind=Kind(row.kind),
        required_permissions=int(row.required_permissions or 0),
        refresh_seconds=int(row.refresh_seconds or 0),
        min_cohort=int(row.min_cohort or 0),
        components=tuple(int(c.component_id) for c in ordered),
        monthly_quantities=tuple(int(c.monthly_quantity or 0) for c in ordered),
    )


def _order_facts(row: Order) -> OrderFacts:
    return OrderFacts(
        order_id=int(row.order_id),
        product_id=int(row.product_id),
        buyer=row.buyer.lower(),
        quantity=int(row.quantity),
        starts_at=int(row.starts_at or 0),
        ends_at=int(row.ends_at),
        refunded_at=None if row.refunded_at is None else int(row.refunded_at),
    )


class IndexedFacts:
    """`workers.access.rule.Facts` over the projections, one request's session."""

    def __init__(
        self,
        session: Session,
        cache: FactsCache,
        staking_check: StakingCheck,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.cache = cache
        self.staking_check = staking_check
        self.head = cache.refresh(session)
        self._clock = clock

    def now(self) -> int:
        """Wall time, or the indexed block's time when the chain runs ahead of the wall."""
        return max(int(self._clock()), self.head.timestamp)

    def may_read(
        self, caller: str, product_id: int, vehicle_id: int, mask: int, *, purpose: Purpose, any_of: int = 0
    ) -> Decision:
        """`workers.access.rule.may_read`, memoised for the indexed block: the rule decides,
        once per (caller, product, vehicle, signals) and block, and again when one of the
        orders it looked at starts, ends or is refunded, or a counter is seen empty."""
        now = self.now()

        def decide() -> tuple[Decision, int]:
            timed = _Timed(self, now)
            decision = may_read(timed, caller, product_id, vehicle_id, mask, purpose=purpose, any_of=any_of)
            return decision, timed.until

        key = (caller.lower(), product_id, vehicle_id, mask, purpose, any_of)
        return self.cache.decision(self.head, key, now, decide)

    def product(self, product_id: int) -> ProductFacts | None:
        return self.cache.get(self.head, ("product", product_id), lambda: self._load_product(product_id))

    def _load_product(self, product_id: int) -> ProductFacts | None:
        if not 0 <= product_id <= UINT256_MAX:
            return None
        row = self.session.get(Product, product_id)
        if row is None:
            return None
        components: list[BundleComponent] = []
        if row.kind == Kind.BUNDLE:
            components = list(
                self.session.scalars(select(BundleComponent).where(BundleComponent.bundle_id == product_id))
            )
        return _product_facts(row, components)

    def operator_active(self, operator: str) -> bool:
        key = ("operator", operator.lower())
        return bool(
            self.cache.get(
                self.head, key, lambda: self.staking_check(operator, Role.OPERATOR, self.head.number)
            )
        )

    def buyer_active(self, buyer: str) -> bool:
        """Whitelisted and staked at least the required stake as Consumer or as Broker."""

        def load() -> bool:
            block = self.head.number
            return self.staking_check(buyer, Role.CONSUMER, block) or self.staking_check(
                buyer, Role.BROKER, block
            )

        return bool(self.cache.get(self.head, ("buyer", buyer.lower()), load))

    def tenure_start(self, vehicle_id: int) -> int | None:
        """When the vehicle's current generation (its current owner's tenure) began."""

        def load() -> int | None:
            if not 0 <= vehicle_id <= UINT256_MAX:
                return None
            row = self.session.get(Vehicle, vehicle_id)
            if row is None or row.burned or row.tenure_started_at is None:
                return None
            return int(row.tenure_started_at)

        return self.cache.get(self.head, ("tenure", vehicle_id), load)

    def joined_at(self, product_id: int, vehicle_id: int) -> int | None:
        """When the vehicle's live consent to `product_id` was given (None: no live consent)."""
        return self._membership(product_id, vehicle_id)[1]

    def is_member(self, product_id: int, vehicle_id: int) -> bool:
        return self._membership(product_id, vehicle_id)[0]

    def _membership(self, product_id: int, vehicle_id: int) -> tuple[bool, int | None]:
        """(live consent, when it was given): one read for both, cached per block."""
        return self.cache.get(
            self.head,
            ("membership", product_id, vehicle_id),
            lambda: self._load_membership(product_id, vehicle_id),
        )

    def _load_membership(self, product_id: int, vehicle_id: int) -> tuple[bool, int | None]:
        if not 0 <= vehicle_id <= UINT256_MAX:
            return False, None
        row = self.session.execute(
            select(
                Membership.version,
                Membership.generation,
                Membership.joined_at,
                Product.version,
                Vehicle.generation,
                Vehicle.burned,
            )
            .join(Product, Product.product_id == Membership.product_id)
            .join(Vehicle, Vehicle.vehicle_id == Membership.vehicle_id)
            .where(Membership.product_id == product_id, Membership.vehicle_id == vehicle_id)
        ).first()
        if row is None:
            return False, None
        version, generation, joined_at, current_version, current_generation, burned = row
        live = (
            not burned
            and int(version) == int(current_version)
            and generation is not None
            and int(generation) == int(current_generation)
        )
        return live, (int(joined_at) if live and joined_at is not None else None)

    def orders(self, buyer: str, product_id: int) -> Sequence[OrderFacts]:
        key = ("orders", buyer.lower(), product_id)
        return self.cache.get(self.head, key, lambda: self._orders(buyer, product_id))

    def _orders(self, buyer: str, product_id: int) -> tuple[OrderFacts, ...]:
        rows = self.session.scalars(
            select(Order)
            .where(Order.buyer == buyer.lower(), Order.product_id == product_id)
            .order_by(Order.ends_at)
        )
        return tuple(_order_facts(r) for r in rows)

    def order(self, order_id: int) -> OrderFacts | None:
        def load() -> OrderFacts | None:
            if not 0 <= order_id <= UINT256_MAX:
                return None
            row = self.session.get(Order, order_id)
            return None if row is None else _order_facts(row)

        return self.cache.get(self.head, ("order", order_id), load)

    def bundles_containing(self, product_id: int) -> Sequence[int]:
        def load() -> tuple[int, ...]:
            rows = self.session.scalars(
                select(BundleComponent.bundle_id).where(BundleComponent.component_id == product_id)
            )
            return tuple(sorted({int(r) for r in rows}))

        return self.cache.get(self.head, ("bundles", product_id), load)

    def credits_left(self, entitlement: Entitlement) -> int:
        """Credits are only ever spent, so a counter seen at 0 stays 0 (cached for good);
        otherwise the counter is read. The atomic spend remains the last word."""
        key = (entitlement.order.order_id, entitlement.product_id)
        if key in self.cache.exhausted:
            return 0
        row = self.session.connection().execute(_CREDITS, {"order_id": key[0], "product_id": key[1]}).first()
        if row is None:
            return entitlement.allowance
        remaining, expired = row
        left = 0 if expired else int(remaining)
        if left <= 0:
            self.cache.mark_exhausted(key)
        return left

    def vehicle_owner(self, vehicle_id: int) -> str | None:
        def load() -> str | None:
            row = self.session.get(Vehicle, vehicle_id)
            return None if row is None or row.burned else row.owner

        return self.cache.get(self.head, ("owner", vehicle_id), load)

    def members(self, product_id: int) -> tuple[int, ...]:
        """Vehicles whose consent to `product_id` is live (current version and generation)."""

        def load() -> tuple[int, ...]:
            rows = self.session.execute(live_members(product_id))
            return tuple(sorted(int(r) for r in rows.scalars()))

        return self.cache.get(self.head, ("members", product_id), load)


class _Timed:
    """The facts one decision reads, at a fixed `now`, noting `until`: the first instant after
    `now` at which an order it looked at starts, ends or is refunded."""

    def __init__(self, facts: IndexedFacts, now: int) -> None:
        self._facts = facts
        self._now = now
        self.until = END_OF_TIME

    def __getattr__(self, name: str) -> Any:
        return getattr(self._facts, name)

    def now(self) -> int:
        return self._now

    def _note(self, order: OrderFacts) -> None:
        for moment in (order.starts_at, order.ends_at, order.refunded_at):
            if moment is not None and self._now < moment < self.until:
                self.until = moment

    def orders(self, buyer: str, product_id: int) -> Sequence[OrderFacts]:
        found = self._facts.orders(buyer, product_id)
        for order in found:
            self._note(order)
        return found

    def order(self, order_id: int) -> OrderFacts | None:
        found = self._facts.order(order_id)
        if found is not None:
            self._note(found)
        return found


def live_members(product_id: int) -> Select[tuple[int]]:
    """The vehicles whose consent to `product_id` is live (current version and generation), as
    a query: what reads per member joins on it, never on a list of ids (a product's members
    outnumber a statement's bind parameters: 32,766 on SQLite, 65,535 on PostgreSQL)."""
    return (
        select(Membership.vehicle_id)
        .join(Product, Product.product_id == Membership.product_id)
        .join(Vehicle, Vehicle.vehicle_id == Membership.vehicle_id)
        .where(
            Membership.product_id == product_id,
            Membership.version == Product.version,
            Membership.generation == Vehicle.generation,
            Vehicle.burned.is_(False),
        )
    )


def matching_members(product_id: int, filters: Mapping[str, str]) -> Select[tuple[int]]:
    """`product_id`'s live members whose profile matches every filter (profile field name ->
    value, case-insensitive; an empty mapping matches every member, profile or not), lowest ids
    first: one query that a caller bounds with LIMIT or reads as far as it needs."""
    query = live_members(product_id)
    if filters:
        query = query.join(VehicleProfile, VehicleProfile.vehicle_id == Membership.vehicle_id).where(
            *(func.lower(getattr(VehicleProfile, key)) == wanted.lower() for key, wanted in filters.items())
        )
    return query.order_by(Membership.vehicle_id)


def member_profiles(session: Session, product_id: int) -> dict[int, VehicleProfile]:
    """The profiles of `product_id`'s live members (those that have one), by vehicle: one
    join on the membership projection."""
    live = live_members(product_id).subquery()
    rows = session.scalars(select(VehicleProfile).join(live, live.c.vehicle_id == VehicleProfile.vehicle_id))
    return {int(p.vehicle_id): p for p in rows}
