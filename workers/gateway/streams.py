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
served on a day is counted once a day as a member-day.

The order-level rule (`may_use_order`) runs every tick; the per-vehicle half (`may_read`,
`window_start`, the choice of vehicles) is decided once per indexed block and stream shape by
the process's stream hub (workers/gateway/hub.py), which also holds the carried vehicles'
newest observations, pushed by the signal feed (workers/signals/feed.py) after each write
commits, with the owners' privacy zones applied as the store's reads apply them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from sse_starlette.sse import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from workers.access import Decision, Entitlement, Purpose, may_read, may_use_order, window_start
from workers.access.facts import IndexedFacts, matching_members
from workers.gateway.deps import index_refusal
from workers.gateway.hub import Carried, Selection, StreamHub, carried
from workers.gateway.state import GatewayState
from workers.ledger import UsageKind, period_of, record_usage
from workers.protocol.permissions import LOCATION, TELEMETRY

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


def select_vehicles(session: Session, ent: Entitlement, request: StreamRequest, count: int) -> list[int]:
    """Member vehicles of the entitlement's consent product matching the filters, lowest ids
    first, at most `count`: one bounded query, whatever the number of members."""
    query = matching_members(ent.consent_id, request.filters).limit(count)
    return [int(v) for v in session.scalars(query)]


def decide(
    session: Session, facts: IndexedFacts, request: StreamRequest, stream_plan: StreamPlan, decision: Decision
) -> Selection:
    """The rule per vehicle at the indexed block: each entitlement's chosen member vehicles
    that `may_read` allows, with their window (`window_start`) and the classes they expose."""
    chosen: list[Carried] = []
    block = facts.head.number
    for ent in decision.entitlements:
        exposed = STREAM_BITS & ent.terms.permissions
        for vehicle_id in select_vehicles(session, ent, request, stream_plan.vehicles):
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
            if since is not None:
                owner = facts.vehicle_owner(vehicle_id)
                chosen.append(
                    carried(ent, vehicle_id, since=since, exposed=exposed, owner=owner, block=block)
                )
    return Selection(block, tuple(chosen))


@dataclass
class Tick:
    """One period's outcome: the encoded events to send and how many, or the reason (and
    detail) the stream ends."""

    events: bytes = b""
    count: int = 0
    ended: tuple[str, str] | None = None
    #: Seconds to the next tick: the plan's period, or the terms' floor if it rose since.
    period: float = 0.0


@dataclass
class OpenStream:
    """One open stream: what it asked for, and the decision it carries vehicles under."""

    request: StreamRequest
    plan: StreamPlan
    session_id: str
    selection: Selection | None = None

    def adopt(self, hub: StreamHub, selection: Selection) -> None:
        """Carries `selection`'s vehicles from now on (registered with the hub)."""
        before = self.selection.vehicles if self.selection is not None else frozenset()
        hub.carry(selection.vehicles, released=before)
        self.selection = selection

    def close(self, hub: StreamHub) -> None:
        if self.selection is not None:
            hub.carry((), released=self.selection.vehicles)
            self.selection = None


def tick(state: GatewayState, stream: OpenStream) -> Tick:
    """Re-applies the order-level rule (the per-vehicle decision is the hub's for the indexed
    block; a read-only transaction) and sends each carried vehicle's latest signals as the hub
    holds them; member-days not counted yet are written after, in a short transaction. A stale
    index, or a signed-out, revoked or expired token, ends the stream."""
    refusal = index_refusal(state) or state.sessions.refusal(stream.session_id)
    if refusal is not None:
        return Tick(ended=(refusal.reason, refusal.detail))
    hub = state.stream_hub
    request = stream.request
    chunks: list[bytes] = []
    days: list[tuple[Entitlement, int, str | None]] = []
    with state.database.session(read_only=True) as session:
        facts = state.facts(session)
        decision = may_use_order(facts, request.caller, request.order_id, Purpose.STREAM)
        if not decision:
            return Tick(ended=(decision.reason or "", decision.detail))
        now = facts.now()
        period = max([stream.plan.period, *(float(e.terms.refresh_seconds) for e in decision.entitlements)])
        hub.refresh(session, facts.head)
        key = (
            facts.head,
            request.caller.lower(),
            request.order_id,
            tuple(sorted(request.filters.items())),
            stream.plan.vehicles,
            decision.entitlements,
        )
        selection = hub.selection(
            key, facts.head, lambda: decide(session, facts, request, stream.plan, decision)
        )
        if selection is not stream.selection:
            stream.adopt(hub, selection)
    # each in its own transaction when needed, never nested in another (the pool is shared)
    hub.read(state.database, selection.vehicles)
    for c in selection.carried:
        frame = hub.frame(state.database, c.vehicle_id, c.exposed, c.since_ms)
        if frame is None:
            continue  # no signals in the window: left out, not counted
        chunks.append(c.event(frame))
        days.append((c.ent, c.vehicle_id, c.owner))
    _count_member_days(state, days, now)
    return Tick(b"".join(chunks), len(chunks), period=period)


def _count_member_days(
    state: GatewayState, days: list[tuple[Entitlement, int, str | None]], now: int
) -> None:
    """Counts the (order, vehicle, owner) member-days of this period that this process has not
    counted yet, in one short transaction (the ledger counts each once however often it is asked)."""
    hub = state.stream_hub
    period = period_of(now, state.settings.epoch_seconds)
    owed = hub.uncounted((e.order.order_id, e.product_id, v, owner, period) for e, v, owner in days)
    if not owed:
        return
    with state.database.session() as session:
        for order_id, product_id, vehicle_id, owner, counted_period in owed:
            record_usage(
                session,
                UsageKind.STREAM,
                product_id=product_id,
                order_id=order_id,
                vehicle_id=vehicle_id,
                owner=owner,
                period=counted_period,
            )
    hub.counted(owed, period)


def _end(reason: str, detail: str) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps({"reason": reason, "detail": detail}), event="end")


async def stream_events(
    state: GatewayState, request: StreamRequest, stream_plan: StreamPlan, session_id: str
) -> AsyncIterator[ServerSentEvent | bytes]:
    """The event stream: `signals` events each period, `end` with the reason when the rule
    stops allowing it (order expired, product or operator inactive), the bearer session
    ends (signed out, revoked, expired) or the index goes stale (`index_stale`). A tick's
    events go out as one write."""
    stream = OpenStream(request, stream_plan, session_id)
    state.metrics.streams_open.inc()
    state.stream_slots.opened(session_id)
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
            # the database work of a tick runs off the event loop: other requests go on meanwhile
            outcome = await run_in_threadpool(tick, state, stream)
            if outcome.ended is not None:
                yield _end(*outcome.ended)
                return
            if outcome.count:
                yield outcome.events
                state.metrics.stream_events.inc(outcome.count)
            await asyncio.sleep(max(0.0, outcome.period - (time.monotonic() - started)))
    finally:
        stream.close(state.stream_hub)
        state.metrics.streams_open.dec()
        state.stream_slots.closed(session_id)
