"""The stream hub: what one gateway process holds for its live streams (DESIGN.md §4).

- One subscriber to the signal feed (workers/signals/feed.py), a thread, keeping the newest
  observation per signal of every vehicle an open stream carries (read once from the store
  when a stream first carries it; observations of other vehicles are ignored). While the feed
  is down (or none is configured) a carried vehicle is re-read from the store at most every
  `poll_seconds`; when the subscription comes (back) up, every carried vehicle is re-read once,
  since pushes may have been missed.
- The rule's decision per stream shape (caller, order, filters, vehicle count) at one indexed
  block (`Selection`): the vehicles it carries, each one's window and signal classes, built
  once per block and shared by every stream of that shape.
- Each vehicle's frame (its signals as JSON: the window, privacy zones
  (`workers.signals.zones.shape`, the function the store's reads apply) and the signal
  classes applied) built once per new observation, zone change or block, and each carried
  vehicle's encoded `signals` event built once per new frame, shared by the streams.
- The owners' privacy zones of carried vehicles, dropped at every new indexed block (a
  transfer voids them) and whenever a zone was made or removed (the zones' change counter,
  `workers.signals.zones.CHANGES`, checked at most every `recheck_seconds`).
- The member-days this process has counted (the ledger counts one per period anyway)."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session
from sse_starlette.sse import ServerSentEvent

from workers.access import Entitlement
from workers.access.facts import IndexedHead
from workers.db.indexing import ProjectionVersion
from workers.db.session import Database
from workers.gateway.metrics import GatewayMetrics
from workers.signals import feed, store, zones
from workers.signals.catalogue import signal_bit
from workers.signals.store import SignalValue

log = logging.getLogger(__name__)

#: Seconds between reconnection attempts while the feed is unreachable.
RECONNECT_SECONDS = 1.0

#: Changes whenever a zone is made or removed (`zones.CHANGES`; None: never).
_ZONES_MARK = select(ProjectionVersion.version).where(ProjectionVersion.table_name == zones.CHANGES)
#: A member-day: (order, product, vehicle, owner, period).
MemberDay = tuple[int, int, int, str | None, int]


def signal_json(s: SignalValue) -> dict[str, Any]:
    from workers.gateway.routes_signals import _iso  # noqa: PLC0415 - one formatter

    return {
        "name": s.name,
        "value": s.value,
        "unit": s.unit,
        "timestamp": _iso(s.timestamp_ms),
        "source": s.source,
    }


@dataclass(frozen=True)
class _View:
    """A vehicle's newest observations by name, and the frames made of them (by signal
    classes, window start and zones epoch; None: nothing to send). Replaced, never changed,
    when an observation arrives, so a frame always matches the observations it was made of."""

    signals: dict[str, SignalValue]
    frames: dict[tuple[int, int, int], str | None] = field(default_factory=dict)


@dataclass
class _Held:
    view: _View
    #: Streams carrying the vehicle.
    streams: int = 0
    #: Monotonic time the vehicle was last read from the store (-inf: never, or read again).
    read_at: float = -math.inf


@dataclass
class Carried:
    """One vehicle a stream shape carries at one block, as the rule decided it there."""

    ent: Entitlement
    vehicle_id: int
    #: The rule's window start (`window_start`), in ms.
    since_ms: int
    #: The signal classes the entitlement's terms expose on a stream.
    exposed: int
    owner: str | None
    #: The event's JSON up to its signals.
    prefix: str
    #: The last frame sent and its encoded event (shared by every stream of the shape).
    sent: tuple[str, bytes] | None = None

    def event(self, frame: str) -> bytes:
        sent = self.sent
        if sent is not None and sent[0] is frame:
            return sent[1]
        encoded = ServerSentEvent(data=self.prefix + frame + "}", event="signals").encode()
        self.sent = (frame, encoded)
        return encoded


@dataclass(frozen=True)
class Selection:
    """The rule's decision for one stream shape at one indexed block."""

    block: int
    carried: tuple[Carried, ...]

    @property
    def vehicles(self) -> frozenset[int]:
        return frozenset(c.vehicle_id for c in self.carried)


def carried(
    ent: Entitlement, vehicle_id: int, *, since: int, exposed: int, owner: str | None, block: int
) -> Carried:
    """`vehicle_id` carried under `ent` from `since` (unix seconds), decided at `block`."""
    head = {
        "order_id": ent.order.order_id,
        "product_id": ent.product_id,
        "vehicle_id": vehicle_id,
        "block": block,  # the indexed block this frame was decided at
    }
    prefix = json.dumps(head)[:-1] + ', "signals": '
    return Carried(ent, vehicle_id, since * 1000, exposed, owner, prefix)


class StreamHub:
    """See the module's docstring. Thread-safe: ticks run in the threadpool, pushes arrive on
    the subscriber thread."""

    def __init__(
        self, feed_url: str | None, metrics: GatewayMetrics, *, poll_seconds: float, recheck_seconds: float
    ) -> None:
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}
        self._head: IndexedHead | None = None
        self._selections: dict[Hashable, Selection] = {}
        self._zones: dict[int, tuple[zones.Zone, ...]] = {}
        self._zones_epoch = 0
        self._zones_mark: int | None = None
        self._zones_checked = -math.inf
        self._counted: set[MemberDay] = set()
        self._counted_period = -1
        self._live = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if feed_url is not None:
            self._thread = threading.Thread(
                target=self._listen, args=(feed_url,), name="stream-hub-feed", daemon=True
            )
            self._thread.start()

    # --- the feed ---------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Is the subscription to the feed up?"""
        return self._live.is_set()

    def wait_live(self, timeout: float) -> bool:
        return self._live.wait(timeout)

    def _listen(self, url: str) -> None:
        while not self._stop.is_set():
            pubsub = None
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
                pubsub = client.pubsub()
                pubsub.subscribe(feed.CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._went_live()
                    elif message["type"] == "message":
                        self._receive(message["data"])
            except (redis.RedisError, OSError) as exc:
                if self._live.is_set():
                    log.warning("signal feed %s lost, streams read the store until it is back: %s", url, exc)
                self._live.clear()
                self.metrics.stream_feed_up.set(0)
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                if pubsub is not None:
                    pubsub.close()

    def _went_live(self) -> None:
        with self._lock:
            for held in self._held.values():
                held.read_at = -math.inf  # what was pushed while away is read from the store
        self._live.set()
        self.metrics.stream_feed_up.set(1)

    def _receive(self, message: bytes) -> None:
        try:
            pushed = feed.decode(message)
        except (ValueError, TypeError) as exc:  # not a feed message: dropped, the feed goes on
            log.warning("signal feed: dropped a message that is not one (%s): %.200r", exc, message)
            return
        for vehicle_id, observed in pushed:
            if vehicle_id in self._held:
                self._merge(vehicle_id, [SignalValue(*o) for o in observed])
                self.metrics.stream_pushed.inc()

    def _merge(self, vehicle_id: int, observed: Iterable[SignalValue]) -> None:
        """Keeps the newer of what is held and `observed`, per name (as the store's latest)."""
        with self._lock:
            held = self._held.get(vehicle_id)
            if held is None:
                return
            signals = dict(held.view.signals)
            changed = False
            for s in observed:
                kept = signals.get(s.name)
                if kept is None or s.timestamp_ms > kept.timestamp_ms:
                    signals[s.name] = s
                    changed = True
            if changed:
                held.view = _View(signals)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- what streams carry ------------------------------------------------------------------

    def carry(self, vehicles: Iterable[int], *, released: Iterable[int] = ()) -> None:
        """A stream now carries `vehicles`, and no longer `released`."""
        with self._lock:
            for vehicle_id in vehicles:
                held = self._held.get(vehicle_id)
                if held is None:
                    held = self._held[vehicle_id] = _Held(_View({}))
                held.streams += 1
            for vehicle_id in released:
                held = self._held.get(vehicle_id)
                if held is not None:
                    held.streams -= 1
                    if held.streams <= 0:
                        del self._held[vehicle_id]

    def read(self, database: Database, vehicles: Iterable[int]) -> None:
        """Reads from the store the carried vehicles never read, or due again (the feed is not
        up and `poll_seconds` passed), in a transaction begun after they were registered: a
        write committed before it is in what it reads, one committed after it is pushed."""
        live = self._live.is_set()
        now = time.monotonic()
        due = [
            (vehicle_id, held)
            for vehicle_id in vehicles
            if (held := self._held.get(vehicle_id)) is not None
            and (held.read_at == -math.inf or (not live and now - held.read_at >= self.poll_seconds))
        ]
        if not due:
            return
        with database.session(read_only=True) as session:
            for vehicle_id, held in due:
                held.read_at = now
                self._merge(vehicle_id, store.latest(session, vehicle_id, since_ms=0))
        self.metrics.stream_store_reads.inc(len(due))

    # --- the rule's decisions and the zones, per indexed block ------------------------------

    def refresh(self, session: Session, head: IndexedHead) -> None:
        """Drops the decisions and zones of an older block, and the zones when a zone was made or
        removed (the change counter read at most every `recheck_seconds`)."""
        if head != self._head:
            with self._lock:
                if head != self._head:
                    self._head = head
                    self._selections = {}
                    self._drop_zones()
        now = time.monotonic()
        if now - self._zones_checked < self.recheck_seconds:
            return
        mark = session.scalar(_ZONES_MARK)
        self._zones_checked = now
        if mark != self._zones_mark:
            with self._lock:
                self._zones_mark = mark
                self._drop_zones()

    def _drop_zones(self) -> None:
        self._zones = {}
        self._zones_epoch += 1

    def selection(self, key: Hashable, head: IndexedHead, decide: Callable[[], Selection]) -> Selection:
        """The decision for `key` at `head`, made once per block."""
        found = self._selections.get(key)
        if found is not None:
            return found
        made = decide()
        with self._lock:
            if head == self._head:
                self._selections[key] = made
        return made

    def _zones_of(self, database: Database, vehicle_id: int, epoch: int) -> tuple[zones.Zone, ...]:
        found = self._zones.get(vehicle_id)
        if found is None:
            with database.session(read_only=True) as session:
                found = tuple(zones.live_zones(session, vehicle_id))
            with self._lock:
                if epoch == self._zones_epoch:
                    self._zones[vehicle_id] = found
        return found

    def frame(self, database: Database, vehicle_id: int, exposed: int, since_ms: int) -> str | None:
        """The vehicle's signals of classes `exposed` observed at or after `since_ms`, privacy
        zones applied, as a JSON list; None when there are none."""
        held = self._held.get(vehicle_id)
        if held is None:
            return None
        view, epoch = held.view, self._zones_epoch
        key = (exposed, since_ms, epoch)
        if key in view.frames:
            return view.frames[key]
        window = [s for _, s in sorted(view.signals.items()) if s.timestamp_ms >= since_ms]
        if any(s.name in zones.COORDINATES for s in window):
            window = zones.shape(self._zones_of(database, vehicle_id, epoch), window)
        shown = [signal_json(s) for s in window if signal_bit(s.name) & exposed]
        made = json.dumps(shown) if shown else None
        view.frames[key] = made
        return made

    # --- member-days -------------------------------------------------------------------------

    def uncounted(self, days: Iterable[MemberDay]) -> list[MemberDay]:
        counted = self._counted
        return [d for d in days if d not in counted]

    def counted(self, days: Iterable[MemberDay], period: int) -> None:
        with self._lock:
            if period > self._counted_period:  # a new period: the old one's days are done
                self._counted = set()
                self._counted_period = period
            self._counted.update(d for d in days if d[4] == self._counted_period)
