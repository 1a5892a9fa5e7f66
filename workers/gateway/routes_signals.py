"""Metered signal reads under an Api product: the full access rule on every call (DESIGN.md
§4), only observations inside the window it allows (`window_start`), and one credit for a
call that returns signals (an empty answer costs nothing and records no usage)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Protocol

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from workers.access import Entitlement, Purpose, window_start
from workers.access.facts import IndexedFacts
from workers.gateway.auth import Identity
from workers.gateway.credits import in_spending_order, spend_credit
from workers.gateway.deps import Caller, read_session, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.state import GatewayState
from workers.ledger import UsageKind, period_of, record_usage
from workers.protocol import UINT256_MAX
from workers.protocol.permissions import LOCATION, TELEMETRY, VIN
from workers.signals import store, zones
from workers.signals.catalogue import signal_bit, signals_mask
from workers.signals.store import END_OF_TIME_MS, SignalValue

router = APIRouter(prefix="/v1/products/{productId}/vehicles/{vehicleId}", tags=["signals"])

#: The signal classes a read can carry.
DATA_BITS = TELEMETRY | LOCATION | VIN
HISTORY_LIMIT = 1_000
MAX_NAMES = 64
#: Formatted timestamps kept (about 100 bytes each).
ISO_CACHE_SIZE = 1 << 16

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


@lru_cache(maxsize=ISO_CACHE_SIZE)
def _iso(ms: int) -> str:
    """`ms` (unix milliseconds) as ISO 8601 UTC. Memoised: a vehicle's latest values keep their
    timestamps across calls, and formatting was 7 % of a metered call's CPU."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _names(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    names = sorted({n.strip() for n in raw.split(",") if n.strip()})
    if len(names) > MAX_NAMES:
        raise Problem("bad_request", f"at most {MAX_NAMES} names a call", status=422)
    return names


class Meter(Protocol):
    """Where a metered call reads and pays: `read` the vehicle's stored signals made at or
    after the given unix ms; `spend` one credit of an entitlement and count the call for the
    member's share (credits left, or None when the entitlement has none left)."""

    def read(self, since_ms: int) -> list[SignalValue]: ...

    def spend(self, ent: Entitlement, owner: str | None, period: int) -> int | None: ...


@dataclass
class SessionMeter:
    """A metered call in one ORM transaction (signal history)."""

    session: Session
    vehicle_id: int
    reader: Callable[[int], list[SignalValue]]

    def read(self, since_ms: int) -> list[SignalValue]:
        return self.reader(since_ms)

    def spend(self, ent: Entitlement, owner: str | None, period: int) -> int | None:
        left = spend_credit(self.session, ent)
        if left is not None:
            record_usage(
                self.session,
                UsageKind.API,
                product_id=ent.consent_id,
                order_id=ent.order.order_id,
                vehicle_id=self.vehicle_id,
                owner=owner,
                period=period,
            )
        return left


def _metered(
    state: GatewayState,
    facts: IndexedFacts,
    caller: str,
    *,
    product_id: int,
    vehicle_id: int,
    names: list[str] | None,
    meter: Meter,
) -> tuple[list[SignalValue], int]:
    """The access rule; then, entitlement by entitlement in spending order, the signals inside
    its window and of the classes it may carry (those asked for, or without names every data
    class its order's terms allow: a bundle order, the bundle's and the component's together):
    the first that has any pays one credit and the call is counted for the member's share.
    Returns (signals, credits left); no signals: nothing spent, nothing counted."""
    mask = signals_mask(names) if names is not None else 0
    decision = facts.may_read(
        caller, product_id, vehicle_id, mask, purpose=Purpose.CALL, any_of=DATA_BITS if names is None else 0
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
        signals = [s for s in meter.read(since * 1000) if signal_bit(s.name) & bits]
        if not signals:
            continue
        period = period_of(facts.now(), state.settings.epoch_seconds)
        left = meter.spend(ent, facts.vehicle_owner(vehicle_id), period)
        if left is None:  # another call took the last credit meanwhile
            state.facts_cache.mark_exhausted((ent.order.order_id, ent.product_id))
            raced = True
            continue
        state.metrics.credits_spent.inc()
        return signals, left
    if raced:
        raise Problem("credits_exhausted", f"no calls left on {caller}'s orders for product {product_id}")
    return [], facts.credits_left(payers[0])


@dataclass
class StoreMeter:
    """signals/latest: the read and the spend of `workers.gateway.hotpath` (two statements),
    the caller's session checked by the spend itself (`checked` once it was)."""

    state: GatewayState
    identity: Identity
    vehicle_id: int
    names: list[str] | None
    checked: bool = False

    def read(self, since_ms: int) -> list[SignalValue]:
        found, zoned = self.state.metered_store.latest(self.vehicle_id, since_ms)
        if zoned:
            with read_session(self.state) as session:
                found = zones.coarsen(session, self.vehicle_id, found)
        if self.names is None:
            return found
        wanted = set(self.names)
        return [s for s in found if s.name in wanted]

    def spend(self, ent: Entitlement, owner: str | None, period: int) -> int | None:
        left = self.state.metered_store.spend(
            session_id=self.identity.session_id,
            now=int(time.time()),
            order_id=ent.order.order_id,
            product_id=ent.product_id,
            consent_id=ent.consent_id,
            vehicle_id=self.vehicle_id,
            period=period,
            owner=owner,
        )
        if left is None:  # the session is not live, the counter does not exist yet, or is empty
            self.state.sessions.check(self.identity)
            with write_session(self.state) as session:
                left = SessionMeter(session, self.vehicle_id, self.read).spend(ent, owner, period)
        self.checked = True
        return left


def metered_latest(
    state: GatewayState, identity: Identity, product_id: int, vehicle_id: int, names: list[str] | None
) -> tuple[bytes, int]:
    """The whole of signals/latest but HTTP: the rule (memoised per indexed block), the read,
    and one credit with the usage counted when it returns signals. Returns (JSON body,
    credits left); raises Problem on refusal, a dead session's first. Shared by the route and
    the fast path (workers.gateway.fastpath); blocking: run it with `metered_store.run`."""
    meter = StoreMeter(state, identity, vehicle_id, names)
    try:
        with state.database.lazy_read_session() as session:
            signals, left = _metered(
                state,
                state.facts(session),
                identity.address,
                product_id=product_id,
                vehicle_id=vehicle_id,
                names=names,
                meter=meter,
            )
    except Problem:
        if not meter.checked:
            state.sessions.check(identity)
        raise
    if not meter.checked:
        state.sessions.check(identity)
    return _answer_body(vehicle_id, signals, left), left


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


_RESPONSES = {200: {"model": SignalsView}, **problem_responses(401, 402, 403, 404, 409, 422, 429)}


@router.get("/signals/latest", response_class=Response, responses=_RESPONSES)
async def latest(
    request: Request, caller: Caller, product_id: ProductId, vehicle_id: VehicleIdParam, names: Names = None
) -> Response:
    """The vehicle's latest signals under Api product `productId`: one credit a call with
    signals, only for member vehicles, only signal classes the order's terms allow (a bundle
    order: the bundle's and the component's together)."""
    state = state_of(request)
    body, left = await state.metered_store.run(
        metered_latest, state, caller, product_id, vehicle_id, _names(names)
    )
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
        meter = SessionMeter(
            session,
            vehicle_id,
            lambda window_ms: store.history(
                session,
                vehicle_id,
                names=wanted,
                since_ms=max(since, window_ms),
                until_ms=min(until, END_OF_TIME_MS),
                limit=HISTORY_LIMIT,
            ),
        )
        signals, left = _metered(
            state,
            state.facts(session),
            caller.address,
            product_id=product_id,
            vehicle_id=vehicle_id,
            names=wanted,
            meter=meter,
        )
    return _answer(vehicle_id, signals, left)
