"""The catalog: products with their terms and bundles, open demand signals, and an
operator's members and revenue by day — public reads of the indexer's projections."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from workers.db.projections import BundleComponent, DemandSignal, Membership, Order, Product
from workers.gateway.deps import ADDRESS_PATTERN, AddressPath, read_session, state_of
from workers.gateway.problems import Problem, problem_responses
from workers.protocol import UINT256_MAX, Kind

router = APIRouter(prefix="/v1", tags=["catalog"])

#: Largest uint256 (path parameters are chain ids).
PAGE_MAX = 500


class Component(BaseModel):
    product_id: int
    kind: str | None
    monthly_quantity: int


class Terms(BaseModel):
    price: str | None
    members_bps: int | None
    operator_bps: int | None
    broker_bps: int | None
    permitted_uses: int | None
    required_permissions: int | None
    refresh_seconds: int | None
    min_cohort: int | None
    terms_hash: str | None
    terms_uri: str | None
    #: Api: how long bought credits stay valid, in seconds (0 for every other kind).
    validity_seconds: int | None


class ProductView(BaseModel):
    product_id: int
    operator: str
    kind: str
    version: int
    active: bool
    terms: Terms
    components: list[Component]


class DemandView(BaseModel):
    signal_id: int
    account: str
    spec_hash: str
    uri: str
    budget: str


def _terms(row: Product) -> Terms:
    return Terms(
        price=None if row.price is None else str(row.price),
        members_bps=row.members_bps,
        operator_bps=row.operator_bps,
        broker_bps=row.broker_bps,
        permitted_uses=row.permitted_uses,
        required_permissions=row.required_permissions,
        refresh_seconds=row.refresh_seconds,
        min_cohort=row.min_cohort,
        terms_hash=row.terms_hash,
        terms_uri=row.terms_uri,
        validity_seconds=row.validity_seconds,
    )


def _view(row: Product, components: list[BundleComponent], kinds: dict[int, int]) -> ProductView:
    return ProductView(
        product_id=int(row.product_id),
        operator=row.operator,
        kind=Kind(row.kind).name.title(),
        version=int(row.version),
        active=bool(row.active),
        terms=_terms(row),
        components=[
            Component(
                product_id=int(c.component_id),
                kind=Kind(kinds[int(c.component_id)]).name.title() if int(c.component_id) in kinds else None,
                monthly_quantity=int(c.monthly_quantity or 0),
            )
            for c in sorted(components, key=lambda c: c.position)
        ],
    )


@router.get("/products", response_model=list[ProductView])
def list_products(
    request: Request,
    *,
    active: bool | None = Query(None, description="Only active (true) or inactive (false) products"),
    kind: str | None = Query(None, pattern="^(Stream|Api|Dataset|Bundle)$"),
    operator: str | None = Query(None, pattern=ADDRESS_PATTERN),
    after: int = Query(0, ge=0, le=UINT256_MAX, description="Page: products with a larger id"),
    limit: int = Query(100, ge=1, le=PAGE_MAX),
) -> list[ProductView]:
    """The catalog: every product with its current terms; bundles list their components."""
    with read_session(state_of(request)) as session:
        query = select(Product).where(Product.product_id > after)
        if active is not None:
            query = query.where(Product.active.is_(active))
        if kind is not None:
            query = query.where(Product.kind == Kind[kind.upper()].value)
        if operator is not None:
            query = query.where(Product.operator == operator.lower())
        rows = list(session.scalars(query.order_by(Product.product_id).limit(limit)))
        components = _components(session, [int(r.product_id) for r in rows if r.kind == Kind.BUNDLE])
        kinds = _kinds(session, [int(c.component_id) for cs in components.values() for c in cs])
        return [_view(r, components.get(int(r.product_id), []), kinds) for r in rows]


def _components(session: Any, bundle_ids: list[int]) -> dict[int, list[BundleComponent]]:
    if not bundle_ids:
        return {}
    found: dict[int, list[BundleComponent]] = {}
    for c in session.scalars(select(BundleComponent).where(BundleComponent.bundle_id.in_(bundle_ids))):
        found.setdefault(int(c.bundle_id), []).append(c)
    return found


def _kinds(session: Any, product_ids: list[int]) -> dict[int, int]:
    if not product_ids:
        return {}
    rows = session.execute(
        select(Product.product_id, Product.kind).where(Product.product_id.in_(product_ids))
    )
    return {int(pid): int(kind) for pid, kind in rows}


@router.get("/products/{productId}", response_model=ProductView, responses=problem_responses(404))
def get_product(
    request: Request, product_id: int = Path(alias="productId", ge=0, le=UINT256_MAX)
) -> ProductView:
    """One product with its current terms (and components, for a bundle)."""
    with read_session(state_of(request)) as session:
        row = session.get(Product, product_id)
        if row is None:
            raise Problem("not_found", f"no product {product_id}")
        components = _components(session, [product_id]).get(product_id, [])
        kinds = _kinds(session, [int(c.component_id) for c in components])
        return _view(row, components, kinds)


@router.get("/demand", response_model=list[DemandView])
def list_demand(
    request: Request,
    after: int = Query(0, ge=0, le=UINT256_MAX),
    limit: int = Query(100, ge=1, le=PAGE_MAX),
) -> list[DemandView]:
    """Open demand signals: public requests for data that operators may answer with products."""
    with read_session(state_of(request)) as session:
        rows = session.scalars(
            select(DemandSignal)
            .where(DemandSignal.withdrawn.is_(False), DemandSignal.signal_id > after)
            .order_by(DemandSignal.signal_id)
            .limit(limit)
        )
        return [
            DemandView(
                signal_id=int(r.signal_id),
                account=r.account,
                spec_hash=r.spec_hash,
                uri=r.uri,
                budget=str(r.budget),
            )
            for r in rows
        ]


DAY = 86_400


class OperatorDay(BaseModel):
    #: The UTC day's start (unix seconds, block time).
    day: int
    #: Member vehicles of the operator's products at the day's end (one per product and
    #: vehicle; memberships ended since are not counted).
    members: int
    #: Orders placed that day for the operator's products, and the operator's part of them
    #: (PaymentSplit, base units, decimal string).
    orders: int
    revenue: str


class OperatorHistory(BaseModel):
    operator: str
    products: list[int]
    days: list[OperatorDay]


@router.get("/operators/{address}/history", response_model=OperatorHistory, responses=problem_responses(422))
def operator_history(
    request: Request,
    address: AddressPath,
    days: Annotated[int, Query(ge=1, le=366)] = 90,
) -> OperatorHistory:
    """Members and revenue of `address`'s products per UTC day, every day from the first
    membership or order to the last (at most the last `days` of them)."""
    operator = address.lower()
    with read_session(state_of(request)) as session:
        products = [
            int(p)
            for p in session.scalars(
                select(Product.product_id).where(Product.operator == operator).order_by(Product.product_id)
            )
        ]
        joined = Counter(
            int(t) // DAY
            for t in session.scalars(
                select(Membership.joined_at)
                .join(Product, Product.product_id == Membership.product_id)
                .where(Product.operator == operator, Membership.joined_at.is_not(None))
            )
        )
        placed: Counter[int] = Counter()
        revenue: Counter[int] = Counter()
        for starts_at, to_operator in session.execute(
            select(Order.starts_at, Order.to_operator)
            .join(Product, Product.product_id == Order.product_id)
            .where(Product.operator == operator, Order.starts_at.is_not(None))
        ):
            placed[int(starts_at) // DAY] += 1
            revenue[int(starts_at) // DAY] += int(to_operator or 0)
    active = set(joined) | set(placed)
    if not active:
        return OperatorHistory(operator=operator, products=products, days=[])
    first, last = min(active), max(active)
    members = sum(n for d, n in joined.items() if d < max(first, last - days + 1))
    out = []
    for day in range(max(first, last - days + 1), last + 1):
        members += joined[day]
        out.append(OperatorDay(day=day * DAY, members=members, orders=placed[day], revenue=str(revenue[day])))
    return OperatorHistory(operator=operator, products=products, days=out)
