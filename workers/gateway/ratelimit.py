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

log = logging.getLogger(__name__)

#: Buckets idle this long are forgotten (they would be full again anyway).
IDLE_SECONDS = 600.0
#: Sweep idle buckets every this many admissions.
SWEEP_EVERY = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


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
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _admissions: int = 0

    def admit(self, key: str, now: float | None = None) -> float:
        """0.0 when the call may proceed (one token taken), else seconds until it may."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._admissions += 1
        if self._admissions % SWEEP_EVERY == 0:
            self._forget_idle(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if now - b.updated > IDLE_SECONDS]
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


#: Takes one token if there is one (never into debt: a refused call costs nothing), else
#: answers the wait as a string (a Lua number would be truncated). Redis' own clock.
_ADMIT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(now - stamp, 0) * rate)
local wait = '0'
if tokens >= 1 then tokens = tokens - 1 else wait = tostring((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 60)
return wait
"""


def redis_client(url: str) -> Any:
    import redis  # noqa: PLC0415 - only gateways that share their limits need the client

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class RedisRateLimiter:
    """`RateLimiter`'s bucket per key, shared by every gateway process through Redis."""

    def __init__(self, client: Any, prefix: str, rate: float, burst: int) -> None:
        import redis  # noqa: PLC0415

        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._error = redis.RedisError
        self._fallback = RateLimiter(rate, burst)

    def admit(self, key: str) -> float:
        try:
            return float(self._admit(keys=[self.prefix + key], args=[self.rate, self.burst]))
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
