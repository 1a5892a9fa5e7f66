"""Per-token rate limits (a token bucket per bearer session) and per-token live-stream
counts: in process memory (`RateLimiter`, `StreamSlots`), or shared by every gateway process
through Redis (`RedisRateLimiter`, `RedisStreamSlots`, GATEWAY_REDIS_URL), so that N
processes admit one token's configured rate and stream cap, not N times them. If Redis
cannot be reached a process falls back to its own memory (with a warning)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from workers.tokenbucket import Bucket, shared_take

log = logging.getLogger(__name__)

#: Buckets idle this long are forgotten (they would be full again anyway).
IDLE_SECONDS = 600.0
#: Sweep idle buckets every this many admissions.
SWEEP_EVERY = 10_000


class Limiter(Protocol):
    def admit(self, key: str) -> float:
        """0.0 when the call may proceed (one token taken), else seconds until it may."""
        ...


class Slots(Protocol):
    """Live streams held per bearer session."""

    def held(self, key: str) -> int: ...

    def opened(self, key: str) -> None: ...

    def closed(self, key: str) -> None: ...


@dataclass
class RateLimiter:
    rate: float
    burst: int
    _buckets: dict[str, Bucket] = field(default_factory=dict)
    _admissions: int = 0

    def admit(self, key: str, now: float | None = None) -> float:
        """0.0 when the call may proceed (one token taken), else seconds until it may."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(tokens=float(self.burst), stamp=now)
        wait = bucket.take(now, self.rate, self.burst, into_debt=False)
        self._admissions += 1
        if self._admissions % SWEEP_EVERY == 0:
            self._forget_idle(now)
        return wait

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if now - b.stamp > IDLE_SECONDS]
        for key in idle:
            del self._buckets[key]


@dataclass
class StreamSlots:
    """Live streams open per bearer session, in this process."""

    _held: dict[str, int] = field(default_factory=dict)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def opened(self, key: str) -> None:
        self._held[key] = self._held.get(key, 0) + 1

    def closed(self, key: str) -> None:
        left = self._held.get(key, 1) - 1
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)


class RedisRateLimiter:
    """`RateLimiter`'s bucket per key, shared by every gateway process through Redis."""

    def __init__(self, client: Any, prefix: str, rate: float, burst: int) -> None:
        import redis  # noqa: PLC0415

        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._take = shared_take(client)
        self._error = redis.RedisError
        self._fallback = RateLimiter(rate, burst)

    def admit(self, key: str) -> float:
        try:
            return float(self._take(keys=[self.prefix + key], args=[self.rate, self.burst, 0]))
        except self._error as exc:
            log.warning("shared rate limit unavailable (%s): this process limits alone", exc)
            return self._fallback.admit(key)


class RedisStreamSlots:
    """`StreamSlots` shared by every gateway process through Redis: a counter per session,
    which expires with the longest a token lives (a process that died holding streams
    leaks its count only until then)."""

    def __init__(self, client: Any, prefix: str, ttl: int) -> None:
        import redis  # noqa: PLC0415

        self._client = client
        self.prefix = prefix
        self.ttl = ttl
        self._error = redis.RedisError
        self._fallback = StreamSlots()

    def held(self, key: str) -> int:
        try:
            return int(self._client.get(self.prefix + key) or 0)
        except self._error as exc:
            log.warning("shared stream counts unavailable (%s): this process counts alone", exc)
            return self._fallback.held(key)

    def opened(self, key: str) -> None:
        try:
            pipe = self._client.pipeline()
            pipe.incr(self.prefix + key).expire(self.prefix + key, self.ttl).execute()
        except self._error:
            self._fallback.opened(key)

    def closed(self, key: str) -> None:
        try:
            if int(self._client.decr(self.prefix + key)) <= 0:
                self._client.delete(self.prefix + key)
        except self._error:
            self._fallback.closed(key)
