"""The one access rule (DESIGN.md §4), as pure functions over `Facts`.

A read of signal class S of vehicle V for caller C under product P is allowed iff P is
active, P's operator is an active Operator, C is an active buyer (whitelisted and staked as
Consumer or Broker), V is a member of P (consent for this version and generation), C holds a
live order for P (stream in time, API credits left, dataset purchased), S's class is within
P.requiredPermissions, and P.minCohort is met for aggregate answers. A bundle order opens
each of its components (DESIGN.md §3.5): consent is then to the bundle (its version, its
required permissions), the bundle must be active too, and the component is served under the
bundle's terms (`effective_terms`): a component's later terms never widen what a bundle order
gets.

What is served is bounded in time too (`window_start`): only observations made during the
current owner's tenure (since the vehicle's current generation began) and since V joined the
consent product, unless the entitlement's terms carry HISTORY, which opens the rest of the
current tenure (never a previous owner's).

The rule never talks to the chain or the database itself: `Facts` answers the questions.
The gateway answers them from the indexer's projections (`workers.access.facts`); tests
answer them from chain views at the same block and compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from workers.protocol import MONTH_SECONDS, Kind
from workers.protocol.permissions import HISTORY, LIVE


class Purpose(StrEnum):
    """What the caller asks for; each is served by products of one kind."""

    CALL = "call"  # signals/latest and signal history: Api products, one credit a call with data
    STREAM = "stream"  # live server-sent events: Stream products, the order in time
    DATASET = "dataset"  # aggregates: Dataset products, builds within the order's privacy budget


PURPOSE_KIND = {Purpose.CALL: Kind.API, Purpose.STREAM: Kind.STREAM, Purpose.DATASET: Kind.DATASET}


@dataclass(frozen=True)
class ProductFacts:
    product_id: int
    operator: str
    version: int
    active: bool
    kind: Kind
    required_permissions: int
    refresh_seconds: int
    min_cohort: int
    #: Bundles: component ids and their monthly quantities (Api calls a month, else 0).
    components: tuple[int, ...] = ()
    monthly_quantities: tuple[int, ...] = ()


@dataclass(frozen=True)
class OrderFacts:
    order_id: int
    product_id: int
    buyer: str  # lower-case
    quantity: int
    starts_at: int
    ends_at: int
    #: When its buyer took back the unvested remainder (Refunded); None: never.
    refunded_at: int | None = None

    @property
    def ended_at(self) -> int:
        """When the order stops serving: its end, or its refund if that came first."""
        return self.ends_at if self.refunded_at is None else min(self.ends_at, self.refunded_at)

    def months(self) -> int:
        """Whole months a (bundle) subscription runs; at least one."""
        return max(1, (self.ends_at - self.starts_at + MONTH_SECONDS // 2) // MONTH_SECONDS)


@dataclass(frozen=True)
class Terms:
    """The terms an entitlement is served under: the permission bits it may carry, the
    fastest refresh (seconds) a stream may run at, and the smallest cohort an aggregate may
    describe. The buyer's declared use was checked on chain against the permittedUses of the
    product the order bought (for a bundle order: the bundle's)."""

    permissions: int
    refresh_seconds: int
    min_cohort: int


def effective_terms(served: ProductFacts, bundle: ProductFacts | None) -> Terms:
    """The one place the terms of a served product are decided. A direct order: the product's
    own. A bundle order: what both the bundle (the owner's consent) and the component (what
    it serves now) allow: the bits of both, the slower refresh floor, the larger cohort."""
    if bundle is None:
        return Terms(served.required_permissions, served.refresh_seconds, served.min_cohort)
    return Terms(
        permissions=served.required_permissions & bundle.required_permissions,
        refresh_seconds=max(served.refresh_seconds, bundle.refresh_seconds),
        min_cohort=max(served.min_cohort, bundle.min_cohort),
    )


@dataclass(frozen=True)
class Entitlement:
    """What one order opens for one served product: the order, the product whose data is
    served (`product_id`), the product the vehicle must have consented to (`consent_id`:
    the product itself, or the bundle), the allowance (Api: calls; Stream: vehicles) and the
    terms it is served under (`effective_terms`)."""

    order: OrderFacts
    product_id: int
    consent_id: int
    allowance: int
    terms: Terms


class Facts(Protocol):
    """The questions the rule asks, answered as of one block."""

    def now(self) -> int: ...

    def product(self, product_id: int) -> ProductFacts | None: ...

    def operator_active(self, operator: str) -> bool: ...

    def buyer_active(self, buyer: str) -> bool: ...

    def tenure_start(self, vehicle_id: int) -> int | None: ...

    def joined_at(self, product_id: int, vehicle_id: int) -> int | None: ...

    def is_member(self, product_id: int, vehicle_id: int) -> bool: ...

    def orders(self, buyer: str, product_id: int) -> Sequence[OrderFacts]: ...

    def order(self, order_id: int) -> OrderFacts | None: ...

    def bundles_containing(self, product_id: int) -> Sequence[int]: ...

    def credits_left(self, entitlement: Entitlement) -> int: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str | None = None
    detail: str = ""
    #: Allowed: the live entitlements that allow it (an Api call spends from one of them).
    entitlements: tuple[Entitlement, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.allowed


def refuse(reason: str, detail: str) -> Decision:
    return Decision(False, reason, detail)


# --- entitlements -----------------------------------------------------------------------------


def _entitlement(order: OrderFacts, served: ProductFacts, via: ProductFacts | None) -> Entitlement:
    consent_id = served.product_id if via is None else via.product_id
    return Entitlement(
        order, served.product_id, consent_id, _allowance(order, served, via), effective_terms(served, via)
    )


def _allowance(order: OrderFacts, served: ProductFacts, via: ProductFacts | None) -> int:
    if via is None:
        return order.quantity
    index = via.components.index(served.product_id)
    if served.kind == Kind.API:
        return via.monthly_quantities[index] * order.months()
    if served.kind == Kind.STREAM:
        return order.quantity
    return 1


def entitlements_for(facts: Facts, caller: str, served: ProductFacts) -> list[Entitlement]:
    """Every order of `caller` that opens `served`: direct orders and orders of bundles
    that package it (live or not: the caller of this filters)."""
    caller = caller.lower()
    found = [_entitlement(o, served, None) for o in facts.orders(caller, served.product_id)]
    for bundle_id in facts.bundles_containing(served.product_id):
        bundle = facts.product(bundle_id)
        if bundle is None or bundle.kind != Kind.BUNDLE:
            continue
        found += [_entitlement(o, served, bundle) for o in facts.orders(caller, bundle_id)]
    return found


def entitlements_of_order(facts: Facts, order: OrderFacts, purpose: Purpose) -> list[Entitlement]:
    """What one order opens for `purpose`: its own product, or each matching bundle component."""
    product = facts.product(order.product_id)
    if product is None:
        return []
    kind = PURPOSE_KIND[purpose]
    if product.kind == kind:
        return [_entitlement(order, product, None)]
    if product.kind != Kind.BUNDLE:
        return []
    opened = []
    for component_id in product.components:
        component = facts.product(component_id)
        if component is not None and component.kind == kind:
            opened.append(_entitlement(order, component, product))
    return opened


# --- the rule ----------------------------------------------------------------------------------

#: Why an entitlement cannot serve, from the closest to serving to the farthest. A refusal
#: names what blocks the caller's most useful entitlement: the first reason in this order.
_FAILURE_ORDER = (
    "no_consent",
    "signal_not_permitted",
    "credits_exhausted",
    "order_expired",
    "order_refunded",
    "product_inactive",
    "operator_inactive",
)


def _entitlement_failure(
    facts: Facts, ent: Entitlement, purpose: Purpose, mask: int, now: int, *, any_of: int = 0
) -> Decision | None:
    """Why this entitlement cannot serve now (None: it can, consent aside)."""
    if ent.consent_id != ent.product_id:
        bundle = facts.product(ent.consent_id)
        if bundle is None or not bundle.active:
            return refuse("product_inactive", f"bundle {ent.consent_id} is inactive")
        if not facts.operator_active(bundle.operator):
            return refuse("operator_inactive", f"bundle {ent.consent_id}'s operator is not active")
    needed = mask | (LIVE if purpose == Purpose.STREAM else 0)
    if needed & ~ent.terms.permissions or (any_of and not any_of & ent.terms.permissions):
        return refuse(
            "signal_not_permitted",
            f"order {ent.order.order_id}'s terms for product {ent.product_id} do not cover these signals",
        )
    order = ent.order
    ended = _order_ended(order, now)
    if ended is not None:
        return ended
    if purpose == Purpose.CALL and facts.credits_left(ent) <= 0:
        return refuse("credits_exhausted", f"order {order.order_id} has no calls left")
    return None


def _order_ended(order: OrderFacts, now: int) -> Decision | None:
    """Why the order serves nothing now: refunded (`order_refunded`; the refund also moved
    its endsAt to the refund's time), or not started or past its end (`order_expired`)."""
    if order.refunded_at is not None and now >= order.refunded_at:
        return refuse(
            "order_refunded",
            f"order {order.order_id} was refunded to its buyer at {order.refunded_at} (now {now})",
        )
    if now < order.starts_at or now >= order.ends_at:
        return refuse(
            "order_expired",
            f"order {order.order_id} runs from {order.starts_at} to {order.ends_at} (now {now})",
        )
    return None


def _most_useful(failures: list[Decision]) -> Decision:
    return min(
        failures,
        key=lambda d: _FAILURE_ORDER.index(d.reason) if d.reason in _FAILURE_ORDER else len(_FAILURE_ORDER),
    )


def _buyer_failure(facts: Facts, caller: str) -> Decision | None:
    if facts.buyer_active(caller):
        return None
    return refuse("buyer_inactive", f"{caller} is not an active (whitelisted and staked) Consumer or Broker")


def check_product(
    facts: Facts, product_id: int, purpose: Purpose, mask: int
) -> tuple[ProductFacts | None, Decision]:
    """The product-level half of the rule: P exists, serves `purpose`, is active, its
    operator is active, and covers the signal classes in `mask`."""
    product = facts.product(product_id)
    if product is None:
        return None, refuse("not_found", f"no product {product_id}")
    if product.kind != PURPOSE_KIND[purpose]:
        return product, refuse(
            "wrong_kind",
            f"product {product_id} is a {product.kind.name} product; "
            f"{purpose} needs {PURPOSE_KIND[purpose].name}",
        )
    if not product.active:
        return product, refuse("product_inactive", f"product {product_id} is inactive")
    if not facts.operator_active(product.operator):
        return product, refuse(
            "operator_inactive", f"operator {product.operator} of product {product_id} is not active"
        )
    needed = mask | (LIVE if purpose == Purpose.STREAM else 0)
    missing = needed & ~product.required_permissions
    if missing:
        return product, refuse(
            "signal_not_permitted", f"product {product_id} does not expose permission bits {missing:#x}"
        )
    return product, Decision(True)


def may_read(
    facts: Facts,
    caller: str,
    product_id: int,
    vehicle_id: int,
    mask: int,
    *,
    purpose: Purpose = Purpose.CALL,
    order_id: int | None = None,
    any_of: int = 0,
) -> Decision:
    """May `caller` have the signals of classes `mask` of `vehicle_id` under `product_id`
    for `purpose` (optionally only through order `order_id`)? The one rule. `any_of`: the
    entitlement's terms must also carry at least one of these classes (a read of "every
    signal the terms allow"; the answer then carries `any_of & terms.permissions`)."""
    product, decision = check_product(facts, product_id, purpose, mask)
    if product is None or not decision:
        return decision
    ents = entitlements_for(facts, caller, product)
    if order_id is not None:
        ents = [e for e in ents if e.order.order_id == order_id]
    if not ents:
        return refuse("no_order", f"{caller} holds no order for product {product_id}")
    inactive = _buyer_failure(facts, caller)
    if inactive is not None:
        return inactive
    now = facts.now()
    live: list[Entitlement] = []
    failures: list[Decision] = []
    for ent in ents:
        failure = _entitlement_failure(facts, ent, purpose, mask, now, any_of=any_of)
        if failure is not None:
            failures.append(failure)
        elif facts.is_member(ent.consent_id, vehicle_id):
            live.append(ent)
        else:
            failures.append(
                refuse("no_consent", f"vehicle {vehicle_id} has not consented to product {ent.consent_id}")
            )
    if live:
        return Decision(True, entitlements=tuple(live))
    return _most_useful(failures)


def may_use_order(facts: Facts, caller: str, order_id: int, purpose: Purpose) -> Decision:
    """The order-level half of the rule, for streams and datasets: the order is the
    caller's, live, and opens at least one active product of `purpose`'s kind. The allowed
    decision lists what it opens; each vehicle is then checked with `may_read`."""
    order = facts.order(order_id)
    if order is None:
        return refuse("not_found", f"no order {order_id}")
    if order.buyer.lower() != caller.lower():
        return refuse("not_your_order", f"order {order_id} belongs to {order.buyer}")
    ents = entitlements_of_order(facts, order, purpose)
    if not ents:
        return refuse("wrong_kind", f"order {order_id} opens no {PURPOSE_KIND[purpose].name} product")
    inactive = _buyer_failure(facts, caller)
    if inactive is not None:
        return inactive
    now = facts.now()
    live: list[Entitlement] = []
    failures: list[Decision] = []
    for ent in ents:
        _, decision = check_product(facts, ent.product_id, purpose, 0)
        failure = decision if not decision else _entitlement_failure(facts, ent, purpose, 0, now)
        if failure is None:
            live.append(ent)
        else:
            failures.append(failure)
    if live:
        return Decision(True, entitlements=tuple(live))
    return _most_useful(failures)


def window_start(facts: Facts, ent: Entitlement, vehicle_id: int) -> int | None:
    """The earliest observation time (unix seconds) `ent` may be served of `vehicle_id`:
    the start of the current owner's tenure, and, unless the entitlement's terms carry HISTORY,
    the time the vehicle joined the consent product. None: nothing may be served (tenure
    unknown)."""
    tenure = facts.tenure_start(vehicle_id)
    if tenure is None:
        return None
    if ent.terms.permissions & HISTORY:
        return tenure
    joined = facts.joined_at(ent.consent_id, vehicle_id)
    if joined is None:
        return None
    return max(tenure, joined)


def cohort_decision(ent: Entitlement, cohort: int) -> Decision:
    """Aggregate answers need at least the entitlement's `minCohort` vehicles."""
    if cohort < max(1, ent.terms.min_cohort):
        return refuse(
            "cohort_too_small",
            f"{cohort} member vehicles match; "
            f"order {ent.order.order_id}'s terms for product {ent.product_id} "
            f"need at least {ent.terms.min_cohort}",
        )
    return Decision(True)
