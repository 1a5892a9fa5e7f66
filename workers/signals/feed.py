"""The signal feed: every committed write of observations is published on a Redis channel
(pub/sub), so live streams are pushed new values instead of re-reading the store each period
(DESIGN.md §4).

`store_many` hands its batch to `publish_after_commit`: the observations wait in the
session until its transaction commits and are published then (SQLAlchemy's `after_commit`);
a rolled-back transaction publishes nothing. A message is compact JSON, a list of
`[vehicle_id, [[name, value, unit, timestamp_ms, source, signature], ...]]`, at most
`VEHICLES_PER_MESSAGE` vehicles. Pub/sub is fire-and-forget: a subscriber that was away
re-reads the store when it comes back (workers/gateway/hub.py); a feed that cannot be
reached costs the writer a logged warning and `RETRY_SECONDS` of unpublished writes (the data
is committed either way; a stream shows such a vehicle's previous values, with their
timestamps, until its next published write)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from workers.config import get_settings

if TYPE_CHECKING:
    from workers.signals.store import Observation

log = logging.getLogger(__name__)

#: The channel committed observations are published on.
CHANNEL = "dimo:signals"
#: Vehicles per published message (a large batch goes out as several).
VEHICLES_PER_MESSAGE = 500
#: Seconds a publish may wait on the feed before the writer gives up on it.
PUBLISH_TIMEOUT = 2.0
#: Seconds writes go unpublished after the feed failed once.
RETRY_SECONDS = 5.0

_PENDING = "signals_feed_pending"
#: One published observation: name, value, unit, timestamp_ms, source, signature.
Published = tuple[str, Any, str | None, int, str, str | None]


def _observed(s: Observation) -> list[Any]:
    return [s.name, s.value, s.unit, s.timestamp_ms, s.source, s.signature]


def encode(batch: Iterable[tuple[int, Iterable[Observation]]]) -> list[bytes]:
    """`batch` as messages (compact JSON, `VEHICLES_PER_MESSAGE` vehicles each)."""
    vehicles = [[vehicle_id, [_observed(s) for s in signals]] for vehicle_id, signals in batch]
    return [
        json.dumps(vehicles[i : i + VEHICLES_PER_MESSAGE], separators=(",", ":")).encode()
        for i in range(0, len(vehicles), VEHICLES_PER_MESSAGE)
    ]


def decode(message: bytes | str) -> list[tuple[int, list[Published]]]:
    return [
        (int(vehicle_id), [(n, v, u, int(ts), src, sig) for n, v, u, ts, src, sig in observed])
        for vehicle_id, observed in json.loads(message)
    ]


class _Publisher:
    """One Redis client per feed URL; after a failure, writes go unpublished for
    `RETRY_SECONDS` (a feed that hangs must not hold every commit for `PUBLISH_TIMEOUT`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=PUBLISH_TIMEOUT, socket_timeout=PUBLISH_TIMEOUT
        )
        self.down_until = 0.0

    def publish(self, messages: list[bytes]) -> None:
        if time.monotonic() < self.down_until:
            return
        try:
            for message in messages:
                self.client.publish(CHANNEL, message)
        except (redis.RedisError, OSError) as exc:
            if not self.down_until:
                log.warning(
                    "signal feed %s unreachable, live streams fall back to the store: %s", self.url, exc
                )
            self.down_until = time.monotonic() + RETRY_SECONDS
            return
        self.down_until = 0.0


@lru_cache(maxsize=4)
def _publisher(url: str) -> _Publisher:
    return _Publisher(url)


def publish(url: str, messages: list[bytes]) -> None:
    """Publishes `messages` on `CHANNEL` (a failure is logged once per outage, not raised)."""
    _publisher(url).publish(messages)


def publish_after_commit(session: Session, batch: Iterable[tuple[int, Iterable[Observation]]]) -> None:
    """Publishes `batch` once `session`'s transaction commits; drops it if it rolls back.
    Nothing when no feed is configured (`Settings.feed_url`)."""
    url = get_settings().feed_url()
    if url is None:
        return
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_rollback", _rolled_back)
    pending.append((url, [(vehicle_id, list(signals)) for vehicle_id, signals in batch]))


def _committed(session: Session) -> None:
    pending = session.info.get(_PENDING) or []
    session.info[_PENDING] = []
    by_url: dict[str, list[tuple[int, list[Observation]]]] = {}
    for url, batch in pending:
        by_url.setdefault(url, []).extend(batch)
    for url, batch in by_url.items():
        publish(url, encode(batch))


def _rolled_back(session: Session) -> None:
    session.info[_PENDING] = []
