"""Retry budget and backoff for calls to an OEM: exponential with full jitter, and the
OEM's Retry-After honoured (up to a cap beyond which the caller reschedules instead)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    #: Attempts per call, the first included.
    max_attempts: int = 5
    #: First backoff ceiling (seconds); doubles per attempt up to `backoff_max`.
    backoff_base: float = 0.25
    backoff_max: float = 20.0
    #: A Retry-After longer than this is not slept through: the error goes to the caller.
    retry_after_max: float = 30.0
    #: Refresh access tokens this many seconds before they expire.
    refresh_skew: float = 60.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(0, ceiling)
