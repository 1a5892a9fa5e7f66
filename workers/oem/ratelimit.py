"""Client-side pacing of calls to one OEM: a token bucket per connection, so the workers
stay under the automaker's published limit instead of learning it from 429s."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from workers.tokenbucket import Bucket, redis_client, shared_take

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Blocks until one call may go out; the seconds it waited."""
        ...


class TokenBucket:
    """`rate` calls per second on average, bursts of up to `burst`; thread-safe.

    This paces one process; RedisTokenBucket paces a pool of processes together.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._bucket = Bucket(tokens=float(burst), stamp=clock())
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Takes one token (possibly going into debt) and says how long to wait for it."""
        with self._lock:
            return self._bucket.take(self._clock(), self.rate, self.burst, into_debt=True)

    def acquire(self) -> float:
        """Blocks until a call may go out; returns the seconds it waited."""
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class RedisTokenBucket:
    """The same bucket shared by every process through Redis (OEM_RATE_LIMIT_REDIS_URL), so
    a pool of Celery workers stays under one OEM limit together. If Redis cannot be reached
    the process falls back to its own bucket (pacing alone, with a warning)."""

    def __init__(
        self,
        url: str,
        key: str,
        rate: float,
        burst: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import redis  # noqa: PLC0415 - only processes that share a bucket need the client

        self.rate = rate
        self.burst = burst
        self.key = key
        self._sleep = sleep
        self._redis_error = redis.RedisError
        self._take = shared_take(redis_client(url))
        self._fallback = TokenBucket(rate, burst, sleep=sleep)

    def acquire(self) -> float:
        try:
            wait = float(self._take(keys=[self.key], args=[self.rate, self.burst, 1]))
        except self._redis_error as exc:
            log.warning("shared OEM rate limit %s unavailable (%s): pacing this process alone", self.key, exc)
            return self._fallback.acquire()
        if wait > 0:
            self._sleep(wait)
        return wait
