"""Several gateway processes share one token's rate limit and live-stream count through Redis
(GATEWAY_REDIS_URL), on the Redis this machine runs: two limiters (two processes) admit the
burst once between them, where two per-process limiters admit it twice."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from workers.config import get_settings
from workers.gateway.ratelimit import (
    RateLimiter,
    RedisRateLimiter,
    RedisStreamSlots,
    StreamSlots,
)
from workers.gateway.state import GatewayState
from workers.runtime import Runtime
from workers.tokenbucket import redis_client

REDIS_URL = "redis://127.0.0.1:6379/5"


@pytest.fixture
def client() -> Iterator[Any]:
    connection = redis_client(REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield connection
    connection.close()


@pytest.fixture
def prefix(client: Any) -> Iterator[str]:
    prefix = f"test-gateway-{secrets.token_hex(4)}:"
    yield prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def test_two_processes_admit_one_burst_between_them(client: Any, prefix: str) -> None:
    first, second = (RedisRateLimiter(redis_client(REDIS_URL), prefix, 0.001, 3) for _ in range(2))
    waits = [limiter.admit("session") for limiter in (first, second, first, second, first)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(w > 0 for w in waits[3:]), waits  # the shared bucket is empty, for both
    assert first.admit("another session") == 0.0  # buckets are per token


def test_per_process_limiters_admit_the_burst_once_each() -> None:
    """What GATEWAY_REDIS_URL fixes: alone, each process admits a token's whole burst."""
    first, second = RateLimiter(0.001, 3), RateLimiter(0.001, 3)
    waits = [limiter.admit("session") for limiter in (first, second) * 3]
    assert waits == [0.0] * 6


def test_a_refused_call_takes_no_token(client: Any, prefix: str) -> None:
    limiter = RedisRateLimiter(client, prefix, 1.0, 1)
    assert limiter.admit("s") == 0.0
    first_wait = limiter.admit("s")
    assert 0 < first_wait <= 1.0
    assert limiter.admit("s") <= first_wait  # no debt: waiting never grows by being refused


def test_stream_counts_are_shared_and_released(client: Any, prefix: str) -> None:
    first = RedisStreamSlots(redis_client(REDIS_URL), prefix, ttl=60)
    second = RedisStreamSlots(redis_client(REDIS_URL), prefix, ttl=60)
    first.opened("token")
    second.opened("token")
    assert first.held("token") == second.held("token") == 2
    assert 0 < client.ttl(prefix + "token") <= 60  # a dead process's count expires
    first.closed("token")
    second.closed("token")
    assert first.held("token") == 0
    assert client.exists(prefix + "token") == 0


def test_per_process_stream_counts() -> None:
    slots = StreamSlots()
    slots.opened("t")
    slots.opened("t")
    slots.closed("t")
    assert slots.held("t") == 1
    assert StreamSlots().held("t") == 0


def test_the_gateway_shares_its_limits_when_told(client: Any, tmp_path: Any) -> None:
    base = get_settings().model_copy(update={"database_url": f"sqlite:///{tmp_path / 'g.db'}"})
    shared = GatewayState(Runtime(base.model_copy(update={"gateway_redis_url": REDIS_URL})))
    alone = GatewayState(Runtime(base))
    try:
        assert isinstance(shared.limiter, RedisRateLimiter)
        assert isinstance(shared.auth_limiter, RedisRateLimiter)
        assert isinstance(shared.stream_slots, RedisStreamSlots)
        assert isinstance(alone.limiter, RateLimiter)
        assert isinstance(alone.stream_slots, StreamSlots)
    finally:
        shared.close()
        alone.close()
