"""Live streams: server-sent events carrying, each period, the latest signals of member
vehicles only (DESIGN.md §4).

Each tick re-applies the access rule as of the last indexed block: the order must still be
live, its products active and its buyer active, and every vehicle is checked with `may_read`
for the stream's order before its signals go out, only those inside the rule's window
(`window_start`), so a `leave`, a transfer, a terms bump, the buyer going inactive or the
order ending stops a vehicle at the first tick after the indexer applied it; a vehicle with
no signals there is left out of the tick and not counted. The loop refuses to serve from a
stale index (`index_stale`). A stream carries the signal classes of the order's terms
(`Entitlement.terms`: for a bundle order, the bundle's and the component's together). The
consumer chooses how many vehicles (up to the order's `vehicles`), which ones (make, model,
powertrain, region) and the period (never below the terms' refreshSeconds). Each vehicle
served on a day is counted once a day as a member-day."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from sse_starlette.sse import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from workers.access import Decision, Entitlement, Purpose, may_read, may_use_order, window_start
from workers.access.facts import IndexedFacts, member_profiles
from workers.gateway.deps import index_refusal
from workers.gateway.state import GatewayState
from workers.ledger import UsageKind, period_of, record_usage
from workers.protocol.permissions import LOCATION, TELEMETRY
from workers.signals import store
from workers.signals.catalogue import signal_bit
from workers.signals.store import SignalValue

DAY = 86_400
#: The signal classes a stream can carry (LIVE itself carries none).
STREAM_BITS = TELEMETRY | LOCATION
#: Profile fields a consumer can filter on.
FILTERS = ("make", "model", "powertrain", "region")


@dataclass(frozen=True)
class StreamRequest:
    order_id: int
    caller: str
    vehicles: int | None
    refresh: float | None
    filters: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamPlan:
    """What a stream serves: the entitlements it opens, how many vehicles, how often."""

    entitlements: tuple[Entitlement, ...]
    vehicles: int
    period: float


def plan(request: StreamRequest, decision: Decision, floor: float) -> StreamPlan | str:
    """Checks the consumer's parameters against the order's terms (for a bundle order, the
    bundle's: `effective_terms`); a refusal detail when they do not fit."""
    allowance = max(e.allowance for e in decision.entitlements)
    vehicles = allowance if request.vehicles is None else request.vehicles
    if vehicles > allowance:
        return f"the order covers {allowance} vehicles; {vehicles} were asked for"
    minimum = max([floor, *(float(e.terms.refresh_seconds) for e in decision.entitlements)])
    period = minimum if request.refresh is None else request.refresh
    if period < minimum:
        return f"refresh {period:g}s is faster than the product allows ({minimum:g}s)"
    return StreamPlan(decision.entitlements, vehicles, period)


def select_vehicles(
    session: Session, facts: IndexedFacts, ent: Entitlement, request: StreamRequest, count: int
) -> list[int]:
    """Member vehicles of the entitlement's consent product matching the filters, lowest ids first."""
    members = list(facts.members(ent.consent_id))
    if request.filters:
        profiles = member_profiles(session, ent.consent_id)
        members = [
            v
            for v in members
            if v in profiles
            and all(
                (getattr(profiles[v], key) or "").lower() == wanted.lower()
                for key, wanted in request.filters.items()
            )
        ]
    return members[:count]


def _signal_json(s: SignalValue) -> dict[str, Any]:
    from workers.gateway.routes_signals import _iso  # noqa: PLC0415 - one formatter

    return {
        "name": s.name,
        "value": s.value,
        "unit": s.unit,
        "timestamp": _iso(s.timestamp_ms),
        "source": s.source,
    }


def _record_member_day(
    session: Session, state: GatewayState, ent: Entitlement, *, vehicle_id: int, owner: str | None, now: int
) -> None:
    record_usage(
        session,
        UsageKind.STREAM,
        product_id=ent.consent_id,
        order_id=ent.order.order_id,
        vehicle_id=vehicle_id,
        owner=owner,
        period=period_of(now, state.settings.epoch_seconds),
    )


@dataclass
class Tick:
    """One period's outcome: events to send, or the reason the stream ends."""

    events: list[ServerSentEvent]
    ended: Decision | None = None
    #: Seconds to the next tick: the plan's period, or the terms' floor if it rose since.
    period: float = 0.0


def tick(
    state: GatewayState, request: StreamRequest, stream_plan: StreamPlan, counted: set[tuple[int, int, int]]
) -> Tick:
    """Re-applies the rule and gathers the member vehicles' latest signals (a read-only
    transaction); member-days not counted yet are written after, in a short one."""
    events: list[ServerSentEvent] = []
    days: list[tuple[Entitlement, int, str | None, int]] = []
    with state.database.session(read_only=True) as session:
        facts = state.facts(session)
        decision = may_use_order(facts, request.caller, request.order_id, Purpose.STREAM)
        if not decision:
            return Tick([], ended=decision)
        now = facts.now()
        period = max([stream_plan.period, *(float(e.terms.refresh_seconds) for e in decision.entitlements)])
        for ent in decision.entitlements:
            exposed = STREAM_BITS & ent.terms.permissions
            for vehicle_id in select_vehicles(session, facts, ent, request, stream_plan.vehicles):
                allowed = may_read(
                    facts,
                    request.caller,
                    ent.product_id,
                    vehicle_id,
                    0,
                    purpose=Purpose.STREAM,
                    order_id=request.order_id,
                )
                since = window_start(facts, ent, vehicle_id) if allowed else None
                if since is None:
                    continue
                signals = [
                    s
                    for s in store.latest(session, vehicle_id, since_ms=since * 1000)
                    if signal_bit(s.name) & exposed
                ]
                if not signals:
                    continue
                events.append(
                    ServerSentEvent(
                        data=json.dumps(
                            {
                                "order_id": request.order_id,
                                "product_id": ent.product_id,
                                "vehicle_id": vehicle_id,
                                # the indexed block this frame was decided at
                                "block": facts.head.number,
                                "signals": [_signal_json(s) for s in signals],
                            }
                        ),
                        event="signals",
                    )
                )
                key = (ent.product_id, vehicle_id, now // DAY)
                if key not in counted:
                    days.append((ent, vehicle_id, facts.vehicle_owner(vehicle_id), now))
    if days:
        with state.database.session() as session:
            for ent, vehicle_id, owner, now in days:
                _record_member_day(session, state, ent, vehicle_id=vehicle_id, owner=owner, now=now)
        counted.update((ent.product_id, vehicle_id, now // DAY) for ent, vehicle_id, _, now in days)
    return Tick(events, period=period)


async def stream_events(
    state: GatewayState, request: StreamRequest, stream_plan: StreamPlan, session_id: str
) -> AsyncIterator[ServerSentEvent]:
    """The event stream: `signals` events each period, `end` with the reason when the rule
    stops allowing it (order expired, product or operator inactive), the bearer session
    ends (signed out, revoked, expired) or the index goes stale (`index_stale`)."""
    counted: set[tuple[int, int, int]] = set()
    state.metrics.streams_open.inc()
    state.streams_by_session[session_id] = state.streams_by_session.get(session_id, 0) + 1
    try:
        yield ServerSentEvent(
            data=json.dumps(
                {
                    "order_id": request.order_id,
                    "vehicles": stream_plan.vehicles,
                    "refresh": stream_plan.period,
                }
            ),
            event="open",
        )
        while True:
            started = time.monotonic()
            # a stale index, or a signed-out, revoked or expired token, carries no stream past
            # its next tick
            refusal = await run_in_threadpool(index_refusal, state) or await run_in_threadpool(
                state.sessions.refusal, session_id
            )
            if refusal is not None:
                yield ServerSentEvent(
                    data=json.dumps({"reason": refusal.reason, "detail": refusal.detail}), event="end"
                )
                return
            # the database work of a tick runs off the event loop: other requests go on meanwhile
            outcome = await run_in_threadpool(tick, state, request, stream_plan, counted)
            if outcome.ended is not None:
                yield ServerSentEvent(
                    data=json.dumps({"reason": outcome.ended.reason, "detail": outcome.ended.detail}),
                    event="end",
                )
                return
            for event in outcome.events:
                yield event
            state.metrics.stream_events.inc(len(outcome.events))
            await asyncio.sleep(max(0.0, outcome.period - (time.monotonic() - started)))
    finally:
        state.metrics.streams_open.dec()
        left = state.streams_by_session.get(session_id, 1) - 1
        if left > 0:
            state.streams_by_session[session_id] = left
        else:
            state.streams_by_session.pop(session_id, None)
