"""Order-scoped endpoints: an order's state as the chain has it (vesting of its member share,
delivery, refund), an Api order's credits left, the live stream of a Stream (or bundle) order,
and the one-off dataset of a Dataset (or bundle) order."""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from workers.access import Purpose, may_use_order
from workers.access.facts import indexed_head
from workers.access.rule import entitlements_of_order
from workers.datasets.build import DatasetRequest, choose_entitlement, enough_vehicles, has_cohort
from workers.datasets.privacy import budget_of, spend
from workers.db.gateway import DatasetJob
from workers.db.projections import Order, Product
from workers.gateway.deps import Caller, read_session, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.streams import StreamPlan, StreamRequest, plan, stream_events
from workers.gateway.tasks import send_task
from workers.protocol import DATASET_DELIVERY_WINDOW, UINT256_MAX, Kind
from workers.protocol.vesting import refund_due, released
from workers.signals.catalogue import signal_bit

router = APIRouter(tags=["orders"])

OrderId = Annotated[int, Path(alias="orderId", ge=0, le=UINT256_MAX)]
Filter = Annotated[str | None, Query(max_length=64)]


class DatasetJobView(BaseModel):
    job_id: str
    order_id: int
    product_id: int
    status: str
    reason: str | None = None
    detail: str | None = None
    #: The privacy loss (differential privacy) this job spent from its order's budget.
    epsilon: float
    #: What the order's budget has left for further jobs.
    epsilon_remaining: float
    #: The release (workers/datasets/privacy.py): noisy rows and their epsilon and noise scales.
    result: dict[str, Any] | None = None


class VestingView(BaseModel):
    """How the order's member share is released to members (SPEC15 §3), amounts in base units
    (decimal strings). A dataset order vests nothing until delivered (both times 0), then all."""

    member_share: str | None
    vest_starts_at: int | None
    vest_ends_at: int | None
    #: Released to members so far (at `as_of`), stopping at a refund.
    released: str | None
    #: What a refund would pay back now: the unserved part of the order's term (nothing once
    #: it ended; a dataset's whole share until delivered); the members keep the rest.
    unvested: str | None


class OrderView(BaseModel):
    order_id: int
    product_id: int
    kind: str | None
    buyer: str
    broker: str
    quantity: int
    paid: str
    use: int
    #: The terms version the order was bought under.
    terms_version: int | None
    starts_at: int | None
    ends_at: int
    #: `active`, `ended`, `refunded` (from `refunded_at` on) or `awaiting_delivery` (a dataset).
    status: str
    #: Counts in its buyer's lockup until expired or refunded.
    in_force: bool | None
    vesting: VestingView
    delivered_at: int | None
    result_hash: str | None
    refunded_at: int | None
    refunded_amount: str | None
    #: Why its buyer may call `Marketplace.refund` now, as the index sees it (`product_inactive`,
    #: `terms_changed`, `not_delivered`); the chain decides (it also refunds after a slash).
    refundable: list[str]
    #: The chain time the view is computed at (the indexed block's, or the wall's if later).
    as_of: int


def _order_status(order: Order, kind: Kind | None, now: int) -> str:
    if order.refunded_at is not None and now >= order.refunded_at:
        return "refunded"
    if now >= order.ends_at:
        return "ended"
    if kind == Kind.DATASET and order.delivered_at is None:
        return "awaiting_delivery"
    return "active"


def _refundable(
    order: Order, product: Product | None, kind: Kind | None, unvested: int, now: int
) -> list[str]:
    if order.refunded_at is not None or unvested == 0 or product is None:
        return []
    reasons = []
    if not product.active:
        reasons.append("product_inactive")
    if order.terms_version is not None and int(product.version) != int(order.terms_version):
        reasons.append("terms_changed")
    started = order.starts_at or 0
    if kind == Kind.DATASET and order.delivered_at is None and now >= started + DATASET_DELIVERY_WINDOW:
        reasons.append("not_delivered")
    return reasons


def order_view(order: Order, product: Product | None, now: int) -> OrderView:
    """The order as the index has it, its vesting computed at `now` exactly as the chain does."""
    kind = Kind(product.kind) if product is not None else None
    share = None if order.member_share is None else int(order.member_share)
    released_now = unvested = None
    if share is not None and order.vest_starts_at is not None and order.vest_ends_at is not None:
        refunded = None if order.refunded_at is None else int(order.refunded_at)
        refunded_amount = None if order.refunded_amount is None else int(order.refunded_amount)
        starts, ends = int(order.vest_starts_at), int(order.vest_ends_at)
        released_now = released(
            share, starts, ends, now, refunded_at=refunded, refunded_amount=refunded_amount
        )
        if refunded is not None:
            unvested = 0
        elif starts == ends:  # a dataset: all of it until delivered, nothing after
            unvested = share - released_now
        else:
            unvested = refund_due(share, starts, int(order.ends_at), ends, now)
    return OrderView(
        order_id=int(order.order_id),
        product_id=int(order.product_id),
        kind=None if kind is None else kind.name.title(),
        buyer=order.buyer,
        broker=order.broker,
        quantity=int(order.quantity),
        paid=str(order.paid),
        use=int(order.use),
        terms_version=None if order.terms_version is None else int(order.terms_version),
        starts_at=None if order.starts_at is None else int(order.starts_at),
        ends_at=int(order.ends_at),
        status=_order_status(order, kind, now),
        in_force=order.in_force,
        vesting=VestingView(
            member_share=None if share is None else str(share),
            vest_starts_at=None if order.vest_starts_at is None else int(order.vest_starts_at),
            vest_ends_at=None if order.vest_ends_at is None else int(order.vest_ends_at),
            released=None if released_now is None else str(released_now),
            unvested=None if unvested is None else str(unvested),
        ),
        delivered_at=None if order.delivered_at is None else int(order.delivered_at),
        result_hash=order.result_hash,
        refunded_at=None if order.refunded_at is None else int(order.refunded_at),
        refunded_amount=None if order.refunded_amount is None else str(order.refunded_amount),
        refundable=_refundable(order, product, kind, unvested or 0, now),
        as_of=now,
    )


@router.get("/v1/orders/{orderId}", response_model=OrderView, responses=problem_responses(404, 422))
def get_order(request: Request, order_id: OrderId) -> OrderView:
    """An order as the chain has it (public, as its events are): what was paid, under which
    terms version, how much of its member share has vested, its delivery and refund."""
    with read_session(state_of(request)) as session:
        order = session.get(Order, order_id)
        if order is None:
            raise Problem("not_found", f"no order {order_id}")
        product = session.get(Product, order.product_id)
        now = max(int(time.time()), indexed_head(session).timestamp)
        return order_view(order, product, now)


class CreditsPart(BaseModel):
    #: The Api product the calls are of: the order's own, or a component of its bundle.
    product_id: int
    total: int
    remaining: int


class CreditsView(BaseModel):
    order_id: int
    product_id: int
    #: Calls the order bought, and what is left of them (0 once the order ended): summed
    #: over `parts`.
    total: int
    remaining: int
    ends_at: int
    #: Per Api product: an Api order's one, a bundle order's Api components (each its
    #: monthly calls times the months bought, counted down on its own).
    parts: list[CreditsPart]


@router.get(
    "/v1/orders/{orderId}/credits",
    response_model=CreditsView,
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
def get_credits(request: Request, caller: Caller, order_id: OrderId) -> CreditsView:
    """The calls left on one of the caller's Api orders, or on the Api parts of a bundle
    order (a call that returns signals spends one): the full allowance until the first call,
    nothing once the order ended or was refunded."""
    state = state_of(request)
    with read_session(state) as session:
        facts = state.facts(session)
        order = facts.order(order_id)
        if order is None:
            raise Problem("not_found", f"no order {order_id}")
        if order.buyer != caller.address.lower():
            raise Problem("not_your_order", f"order {order_id} belongs to another buyer")
        opened = entitlements_of_order(facts, order, Purpose.CALL)
        if not opened:
            raise Problem("wrong_kind", f"order {order_id} opens no Api product: it has no credits")
        ended = facts.now() >= order.ended_at
        parts = [
            CreditsPart(
                product_id=ent.product_id,
                total=ent.allowance,
                remaining=0 if ended else facts.credits_left(ent),
            )
            for ent in opened
        ]
        return CreditsView(
            order_id=order_id,
            product_id=order.product_id,
            total=sum(p.total for p in parts),
            remaining=sum(p.remaining for p in parts),
            ends_at=order.ends_at,
            parts=parts,
        )


def _stream_plan(request: Request, caller: str, stream: StreamRequest) -> StreamPlan:
    state = state_of(request)
    with read_session(state) as session:
        facts = state.facts(session)
        decision = may_use_order(facts, caller, stream.order_id, Purpose.STREAM)
        if not decision:
            raise Problem(decision.reason or "no_order", decision.detail)
        chosen = plan(stream, decision, state.settings.stream_min_refresh)
    if isinstance(chosen, str):
        raise Problem("too_many_vehicles" if "vehicles" in chosen else "refresh_too_fast", chosen)
    return chosen


@router.get(
    "/v1/orders/{orderId}/stream",
    response_class=Response,
    responses={
        200: {
            "description": "Server-sent events: open, signals (one per vehicle per period), end",
            "content": {"text/event-stream": {}},
        },
        **problem_responses(401, 403, 404, 409, 422, 429),
    },
)
async def stream(
    request: Request,
    caller: Caller,
    order_id: OrderId,
    *,
    vehicles: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="How many vehicles (≤ the order's)")
    ] = None,
    make: Filter = None,
    model: Filter = None,
    powertrain: Filter = None,
    region: Filter = None,
    refresh: Annotated[
        float | None, Query(gt=0, le=86_400, description="Seconds between updates (≥ the product's)")
    ] = None,
) -> Response:
    """Live signals of the order's member vehicles as server-sent events. The consumer picks
    how many vehicles and which (make, model, powertrain, region), and the period."""
    filters = {
        k: v
        for k, v in (("make", make), ("model", model), ("powertrain", powertrain), ("region", region))
        if v
    }
    wanted = StreamRequest(order_id, caller.address, vehicles, refresh, filters)
    chosen = await run_in_threadpool(_stream_plan, request, caller.address, wanted)
    state = state_of(request)
    held = state.stream_slots.held(caller.session_id)
    if held >= state.settings.stream_max_per_token:
        raise Problem("rate_limited", f"{held} live streams already open on this token")
    return EventSourceResponse(
        stream_events(state, wanted, chosen, caller.session_id),
        ping=state.settings.stream_ping_seconds,
        send_timeout=30,
    )


def _job_view(job: DatasetJob, epsilon_remaining: float) -> DatasetJobView:
    return DatasetJobView(
        job_id=job.id,
        order_id=int(job.order_id),
        product_id=int(job.product_id),
        status=job.status,
        reason=job.reason,
        detail=job.detail,
        epsilon=job.epsilon,
        epsilon_remaining=epsilon_remaining,
        result=json.loads(job.result) if job.result else None,
    )


def _queue_dataset(
    request: Request, caller: str, order_id: int, body: DatasetRequest
) -> tuple[DatasetJob, float]:
    state = state_of(request)
    with write_session(state) as session:
        facts = state.facts(session)
        decision = may_use_order(facts, caller, order_id, Purpose.DATASET)
        if not decision:
            raise Problem(decision.reason or "no_order", decision.detail)
        ent = choose_entitlement(decision, body.product_id)
        if ent is None:
            raise Problem("wrong_kind", f"order {order_id} opens no Dataset product {body.product_id}")
        if signal_bit(body.metric) & ~ent.terms.permissions:
            raise Problem(
                "signal_not_permitted",
                f"order {order_id}'s terms for product {ent.product_id} do not cover {body.metric}",
            )
        if not has_cohort(session, facts, caller, ent, body):
            refusal = enough_vehicles(ent, 0)
            raise Problem(refusal.reason or "cohort_too_small", refusal.detail)
        settings = state.settings
        now = int(time.time())
        epsilon = settings.dataset_epsilon_per_query
        budget = spend(session, order_id, epsilon, total=settings.dataset_epsilon_per_order, now=now)
        if budget is None:
            left = budget_of(session, order_id, total=settings.dataset_epsilon_per_order)
            raise Problem(
                "privacy_budget_exhausted",
                f"order {order_id} has epsilon {left.epsilon_remaining:g} of {left.epsilon_total:g} left; "
                f"a dataset job spends {epsilon:g}",
                epsilon_total=left.epsilon_total,
                epsilon_spent=left.epsilon_spent,
            )
        job = DatasetJob(
            id=secrets.token_hex(16),
            order_id=order_id,
            product_id=ent.product_id,
            buyer=caller.lower(),
            request=body.model_dump_json(),
            status="queued",
            epsilon=epsilon,
            created_at=now,
        )
        session.add(job)
    return job, budget.epsilon_remaining


@router.post(
    "/v1/orders/{orderId}/dataset",
    response_model=DatasetJobView,
    status_code=202,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
async def request_dataset(
    request: Request, caller: Caller, order_id: OrderId, body: DatasetRequest
) -> DatasetJobView:
    """Queues a dataset of the order (`datasets.build`): member vehicles only, refused when the
    cohort is below the product's minCohort; released with differential privacy. Each job
    spends DATASET_EPSILON_PER_QUERY of the order's privacy budget, refused once it would
    exceed it (`privacy_budget_exhausted`)."""
    job, remaining = await run_in_threadpool(_queue_dataset, request, caller.address, order_id, body)
    await run_in_threadpool(send_task, state_of(request), "datasets.build", job_id=job.id)
    return _job_view(job, remaining)


def _csv(result: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result["columns"])
    writer.writerows(result["rows"])
    return out.getvalue()


@router.get(
    "/v1/datasets/{jobId}",
    response_model=DatasetJobView,
    responses={200: {"content": {"text/csv": {}}}, **problem_responses(401, 403, 404, 429)},
)
def get_dataset(
    request: Request,
    caller: Caller,
    job_id: Annotated[str, Path(alias="jobId", max_length=64)],
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """The job's status, then its result (JSON, or CSV with `format=csv`). Its buyer only."""
    state = state_of(request)
    with read_session(state) as session:
        job = session.get(DatasetJob, job_id)
        if job is None:
            raise Problem("not_found", f"no dataset job {job_id}")
        if job.buyer.lower() != caller.address.lower():
            raise Problem("not_your_order", f"dataset job {job_id} belongs to another buyer")
        budget = budget_of(session, int(job.order_id), total=state.settings.dataset_epsilon_per_order)
        view = _job_view(job, budget.epsilon_remaining)
    if format == "csv" and view.result is not None:
        return Response(_csv(view.result), media_type="text/csv")
    return view
