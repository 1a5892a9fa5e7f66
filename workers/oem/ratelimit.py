"""Client-side pacing of calls to one OEM: a token bucket per connection, so the workers
stay under the automaker's published limit instead of learning it from 429s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` calls per second on average, bursts of up to `burst`; thread-safe.

    This paces one process. Several worker processes share an OEM's limit by each taking
    its share (OEM rate / processes) or by their 429 backoff.
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
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _reserve(self) -> float:
        """Takes one token (possibly going into debt) and says how long to wait for it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Blocks until a call may go out; returns the seconds it waited."""
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
