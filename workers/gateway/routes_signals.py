"""Metered signal reads under an Api product: the full access rule on every call (DESIGN.md
§4), only observations inside the window it allows (`window_start`), and one credit for a
call that returns signals (an empty answer costs nothing and records no usage)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from workers.access import Purpose, may_read, window_start
from workers.gateway.credits import in_spending_order, spend_credit
from workers.gateway.deps import Caller, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.state import GatewayState
from workers.ledger import UsageKind, period_of, record_usage
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


#: Reads the vehicle's stored signals made at or after the given unix ms.
Reader = Callable[[int], list[SignalValue]]


def _metered(
    state: GatewayState,
    session: Session,
    caller: str,
    *,
    product_id: int,
    vehicle_id: int,
    names: list[str] | None,
    read: Reader,
) -> tuple[list[SignalValue], int]:
    """The access rule; then, entitlement by entitlement in spending order, the signals inside
    its window and of the classes it may carry (those asked for, or without names every data
    class its order's terms allow: a bundle order, the bundle's and the component's together):
    the first that has any pays one credit and the call is counted for the member's share.
    Returns (signals, credits left); no signals: nothing spent, nothing counted."""
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
    payers = in_spending_order(decision.entitlements)
    raced = False
    for ent in payers:
        since = window_start(facts, ent, vehicle_id)
        if since is None:
            continue
        bits = (mask if names is not None else DATA_BITS) & ent.terms.permissions
        signals = [s for s in read(since * 1000) if signal_bit(s.name) & bits]
        if not signals:
            continue
        left = spend_credit(session, ent)
        if left is None:  # another call took the last credit meanwhile
            raced = True
            continue
        record_usage(
            session,
            UsageKind.API,
            product_id=ent.consent_id,
            order_id=ent.order.order_id,
            vehicle_id=vehicle_id,
            owner=facts.vehicle_owner(vehicle_id),
            period=period_of(facts.now(), state.settings.epoch_seconds),
        )
        state.metrics.credits_spent.inc()
        return signals, left
    if raced:
        raise Problem("credits_exhausted", f"no calls left on {caller}'s orders for product {product_id}")
    return [], facts.credits_left(payers[0])


def _answer_body(vehicle_id: int, signals: list[SignalValue], left: int) -> bytes:
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
        ],
        "credits_left": left,
    }
    return json.dumps(body).encode()


def _answer(vehicle_id: int, signals: list[SignalValue], left: int) -> Response:
    return Response(
        _answer_body(vehicle_id, signals, left),
        media_type="application/json",
        headers={"X-Credits-Remaining": str(left)},
    )


def metered_latest(
    state: GatewayState, caller: str, product_id: int, vehicle_id: int, names: list[str] | None
) -> tuple[bytes, int]:
    """The whole of signals/latest but HTTP: the rule, the read, one credit and the usage row
    when it returns signals. Returns (JSON body, credits left); raises Problem on refusal.
    Shared by the route and the fast path (workers.gateway.fastpath)."""
    with write_session(state) as session:
        signals, left = _metered(
            state,
            session,
            caller,
            product_id=product_id,
            vehicle_id=vehicle_id,
            names=names,
            read=lambda since_ms: store.latest(session, vehicle_id, names, since_ms=since_ms),
        )
    return _answer_body(vehicle_id, signals, left), left


_RESPONSES = {200: {"model": SignalsView}, **problem_responses(401, 402, 403, 404, 409, 422, 429)}


@router.get("/signals/latest", response_class=Response, responses=_RESPONSES)
async def latest(
    request: Request, caller: Caller, product_id: ProductId, vehicle_id: VehicleIdParam, names: Names = None
) -> Response:
    """The vehicle's latest signals under Api product `productId`: one credit a call with
    signals, only for member vehicles, only signal classes the order's terms allow (a bundle
    order: the bundle's and the component's together)."""
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
    1,000 observations, oldest first), never before the window the rule allows (the current
    owner's tenure, and the vehicle's joining unless the terms require HISTORY): one credit a
    call that returns signals."""
    state = state_of(request)
    wanted = _names(names)
    since = _instant_ms(from_, 0)
    until = _instant_ms(to, END_OF_TIME_MS)
    if since > until:
        raise Problem("bad_request", "`from` is after `to`", status=422)
    with write_session(state) as session:
        signals, left = _metered(
            state,
            session,
            caller.address,
            product_id=product_id,
            vehicle_id=vehicle_id,
            names=wanted,
            read=lambda window_ms: store.history(
                session,
                vehicle_id,
                names=wanted,
                since_ms=max(since, window_ms),
                until_ms=min(until, END_OF_TIME_MS),
                limit=HISTORY_LIMIT,
            ),
        )
    return _answer(vehicle_id, signals, left)
