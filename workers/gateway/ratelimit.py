"""Per-token rate limits: a token bucket per bearer session, in process memory.

Each uvicorn worker process keeps its own buckets, so N workers admit at most N times the
configured rate for one token; run one worker per core and size the limit accordingly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

#: Buckets idle this long are forgotten (they would be full again anyway).
IDLE_SECONDS = 600.0
#: Sweep idle buckets every this many admissions.
SWEEP_EVERY = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


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
