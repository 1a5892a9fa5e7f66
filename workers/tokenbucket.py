"""The token bucket both limiters use: `rate` tokens a second, holding at most `burst`.

Two ways to take a token, one arithmetic:
- admission (the gateway's per-session limits): a call finding no whole token is refused
  and takes nothing, so a refused call costs nothing; the answer is how long until one is;
- pacing (OEM pulls): the call always takes its token, into debt if need be, and waits until
  the debt is paid; the answer is that wait.

`Bucket` keeps the state in process memory; `SHARED_TAKE` is the same step as a Redis script
(Redis' own clock, atomic), for processes that must stay under one limit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Bucket:
    """One bucket's state: `tokens` (negative while in debt) as of `stamp` (seconds)."""

    tokens: float
    stamp: float

    def take(self, now: float, rate: float, burst: int, *, into_debt: bool) -> float:
        """Refills up to `now`, takes one token as described above, and answers the wait:
        0.0 when the call may go now."""
        self.tokens = min(float(burst), self.tokens + max(now - self.stamp, 0.0) * rate)
        self.stamp = now
        if self.tokens >= 1.0 or into_debt:
            self.tokens -= 1.0
            return 0.0 if self.tokens >= 0.0 else -self.tokens / rate
        return (1.0 - self.tokens) / rate


#: `Bucket.take` in Redis: KEYS[1] the bucket, ARGV rate, burst, '1' to take into debt. The
#: wait comes back as a string (a Lua number would be truncated to an integer reply); the key
#: expires once the bucket would be full again anyway.
SHARED_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local into_debt = ARGV[3] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(now - stamp, 0) * rate)
local wait = 0
if tokens >= 1 or into_debt then
  tokens = tokens - 1
  if tokens < 0 then wait = -tokens / rate end
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 60)
return tostring(wait)
"""


def redis_client(url: str) -> Any:
    """A Redis client that gives up quickly: a limiter falls back to its own memory."""
    import redis  # noqa: PLC0415 - only processes that share a bucket need the client

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def shared_take(client: Any) -> Any:
    """`SHARED_TAKE` registered on `client`: call it with keys=[bucket], args=[rate, burst, debt]."""
    return client.register_script(SHARED_TAKE)
