"""Client-side pacing of OEM calls: the per-process token bucket, and the bucket shared by
every worker process through a real Redis (what keeps a pool of workers under one limit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.anvil import free_port
from tests.support.celery_worker import RedisServer
from workers.config import get_settings
from workers.oem.connectors import connector_for
from workers.oem.ratelimit import RedisTokenBucket, TokenBucket

RATE = 8.0
CALLS = 8


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_bucket_allows_its_burst_then_paces_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(7)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.5, 0.5, 0.5, 0.5])
    clock.now += 10  # idle: the bucket refills to its burst, not beyond
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.5])


def test_a_bucket_refuses_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


def _run_two_processes(make) -> float:
    """Two 'processes' (own bucket objects, own connections) each making CALLS calls."""
    buckets = [make(), make()]
    started = time.monotonic()
    threads = [threading.Thread(target=lambda b=b: [b.acquire() for _ in range(CALLS)]) for b in buckets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def test_a_shared_bucket_paces_all_processes_together(redis_url):
    key = f"test:rate:{free_port()}"
    shared = _run_two_processes(lambda: RedisTokenBucket(redis_url, key, RATE, 1))
    alone = _run_two_processes(lambda: TokenBucket(RATE, 1))
    # 16 calls at 8/s together need ~(16 - 1) / 8 s; two separate buckets only half of it.
    assert shared >= (2 * CALLS - 1) / RATE - 0.1
    assert alone < (CALLS - 1) / RATE + 0.5 < shared


def test_a_shared_bucket_without_redis_paces_its_process_alone(caplog):
    bucket = RedisTokenBucket(f"redis://127.0.0.1:{free_port()}/0", "test:rate:down", RATE, 1)
    started = time.monotonic()
    for _ in range(3):
        bucket.acquire()
    assert time.monotonic() - started >= 2 / RATE - 0.05
    assert "pacing this process alone" in caplog.text


def test_connectors_share_the_redis_bucket_when_configured(redis_url):
    settings = get_settings().model_copy(
        update={"oem_connections": [], "oem_rate_limit_redis_url": redis_url}
    )
    shared = connector_for(1, settings).limiter
    assert isinstance(shared, RedisTokenBucket) and shared.key == "dimo:oem:rate:1"
    assert connector_for(1, settings).limiter is shared
    alone = connector_for(1, settings.model_copy(update={"oem_rate_limit_redis_url": None})).limiter
    assert isinstance(alone, TokenBucket)
