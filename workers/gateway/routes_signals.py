"""Metered signal reads under an Api product: one credit a call, the full access rule on
every call (DESIGN.md §4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from workers.access import Purpose, may_read
from workers.access.facts import IndexedFacts
from workers.gateway.credits import spend_first
from workers.gateway.deps import Caller, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.state import GatewayState
from workers.ledger import UsageKind, epoch_of, record_usage
from workers.protocol import UINT256_MAX
from workers.protocol.permissions import LOCATION, TELEMETRY, VIN
from workers.signals import store
from workers.signals.catalogue import signal_bit, signals_mask
from workers.signals.store import END_OF_TIME_MS, SignalValue

router = APIRouter(prefix="/v1/products/{productId}/vehicles/{vehicleId}", tags=["signals"])

#: The signal classes a read can carry.
DATA_BITS = TELEMETRY | LOCATION | VIN
HISTORY_LIMIT = 1_000
MAX_NAMES = 64

ProductId = Annotated[int, Path(alias="productId", ge=0, le=UINT256_MAX)]
VehicleIdParam = Annotated[int, Path(alias="vehicleId", ge=0, le=UINT256_MAX)]
Names = Annotated[
    str | None,
    Query(
        description="Comma-separated VSS names (default: every signal the product exposes)", max_length=8_000
    ),
]


class SignalView(BaseModel):
    name: str
    value: float | bool | str
    unit: str | None
    timestamp: str
    source: str


class SignalsView(BaseModel):
    vehicle_id: int
    signals: list[SignalView]
    credits_left: int


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _names(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    names = sorted({n.strip() for n in raw.split(",") if n.strip()})
    if len(names) > MAX_NAMES:
        raise Problem("bad_request", f"at most {MAX_NAMES} names a call", status=422)
    return names


def _metered(
    state: GatewayState,
    session: Session,
    caller: str,
    *,
    product_id: int,
    vehicle_id: int,
    names: list[str] | None,
) -> tuple[IndexedFacts, int, int]:
    """The access rule, then one credit spent and the call counted for the member's share.
    Returns (facts, the permission bits the answer may carry, credits left): the classes
    asked for, or without names every data class the spent order's terms allow."""
    facts = state.facts(session)
    mask = signals_mask(names) if names is not None else 0
    decision = may_read(
        facts,
        caller,
        product_id,
        vehicle_id,
        mask,
        purpose=Purpose.CALL,
        any_of=DATA_BITS if names is None else 0,
    )
    if not decision:
        raise Problem(decision.reason or "no_order", decision.detail)
    spent = spend_first(session, decision.entitlements)
    if spent is None:
        raise Problem("credits_exhausted", f"no calls left on {caller}'s orders for product {product_id}")
    ent, left = spent
    record_usage(
        session,
        UsageKind.API,
        # the n-th credit of an order is spent once: a natural idempotency key
        (ent.order.order_id, ent.product_id, left),
        product_id=ent.consent_id,
        vehicle_id=vehicle_id,
        owner=facts.vehicle_owner(vehicle_id),
        epoch=epoch_of(facts.now(), state.settings.epoch_seconds),
    )
    state.metrics.credits_spent.inc()
    return facts, (mask if names is not None else DATA_BITS) & ent.terms.permissions, left


def _answer_body(vehicle_id: int, signals: list[SignalValue], allowed_bits: int, left: int) -> bytes:
    body = {
        "vehicle_id": vehicle_id,
        "signals": [
            {
                "name": s.name,
                "value": s.value,
                "unit": s.unit,
                "timestamp": _iso(s.timestamp_ms),
                "source": s.source,
            }
            for s in signals
            if signal_bit(s.name) & allowed_bits
        ],
        "credits_left": left,
    }
    return json.dumps(body).encode()


def _answer(vehicle_id: int, signals: list[SignalValue], allowed_bits: int, left: int) -> Response:
    return Response(
        _answer_body(vehicle_id, signals, allowed_bits, left),
        media_type="application/json",
        headers={"X-Credits-Remaining": str(left)},
    )


def metered_latest(
    state: GatewayState, caller: str, product_id: int, vehicle_id: int, names: list[str] | None
) -> tuple[bytes, int]:
    """The whole of signals/latest but HTTP: the rule, one credit, the usage row, the read.
    Returns (JSON body, credits left); raises Problem on refusal. Shared by the route and
    the fast path (workers.gateway.fastpath)."""
    with write_session(state) as session:
        _, bits, left = _metered(
            state, session, caller, product_id=product_id, vehicle_id=vehicle_id, names=names
        )
        signals = store.latest(session, vehicle_id, names)
    return _answer_body(vehicle_id, signals, bits, left), left


_RESPONSES = {200: {"model": SignalsView}, **problem_responses(401, 402, 403, 404, 409, 422, 429)}


@router.get("/signals/latest", response_class=Response, responses=_RESPONSES)
async def latest(
    request: Request, caller: Caller, product_id: ProductId, vehicle_id: VehicleIdParam, names: Names = None
) -> Response:
    """The vehicle's latest signals under Api product `productId`: one credit a call, only
    for member vehicles, only signal classes the order's terms allow (a bundle order: the
    bundle's and the component's together)."""
    body, left = metered_latest(state_of(request), caller.address, product_id, vehicle_id, _names(names))
    return Response(body, media_type="application/json", headers={"X-Credits-Remaining": str(left)})


def _instant_ms(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(float(raw) * 1000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Problem("bad_request", f"{raw!r} is neither unix seconds nor ISO 8601", status=422) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@router.get("/signals", response_class=Response, responses=_RESPONSES)
def history(
    request: Request,
    caller: Caller,
    *,
    product_id: ProductId,
    vehicle_id: VehicleIdParam,
    names: Names = None,
    from_: Annotated[
        str | None, Query(alias="from", max_length=40, description="Unix seconds or ISO 8601")
    ] = None,
    to: Annotated[str | None, Query(max_length=40, description="Unix seconds or ISO 8601")] = None,
) -> Response:
    """The vehicle's signal history in [from, to] under Api product `productId` (at most
    1,000 observations, oldest first): one credit a call."""
    state = state_of(request)
    wanted = _names(names)
    since = _instant_ms(from_, 0)
    until = _instant_ms(to, END_OF_TIME_MS)
    if since > until:
        raise Problem("bad_request", "`from` is after `to`", status=422)
    with write_session(state) as session:
        _, bits, left = _metered(
            state, session, caller.address, product_id=product_id, vehicle_id=vehicle_id, names=wanted
        )
        signals = store.history(
            session,
            vehicle_id,
            names=wanted,
            since_ms=max(0, since),
            until_ms=min(until, END_OF_TIME_MS),
            limit=HISTORY_LIMIT,
        )
    return _answer(vehicle_id, signals, bits, left)
