"""Client-side pacing of OEM calls: the per-process token bucket, the bucket shared by every
worker process through a real Redis (what keeps a pool of workers under one limit), each API
family's pace from the settings, and Retry-After in both of its forms. (Two Celery worker
processes keeping one pace at the simulator: test_oem_tasks.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest

from tests.support.anvil import free_port
from tests.support.celery_worker import RedisServer
from workers.config import OemConnection, Settings, get_settings
from workers.oem.connectors import connector_for
from workers.oem.connectors.base import parse_retry_after
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


def test_retry_after_is_read_as_seconds_or_an_http_date():
    now = 1_800_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(formatdate(now + 3600, usegmt=True), now) == pytest.approx(3600.0)
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == 0.0  # past: go now
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == 0.0  # RFC 850 form
    for odd in (None, "", "soon", "-5", "nan"):
        assert parse_retry_after(odd, now) is None


def test_each_api_family_has_its_pace_from_the_environment(monkeypatch):
    monkeypatch.setenv("OEM_PACE_TESLA", "2.5")
    monkeypatch.setenv("OEM_PACE_TESLA_BURST", "3")
    monkeypatch.setenv("OEM_PACE_SMARTCAR", "40")
    settings = Settings()
    tesla = connector_for(2, settings.model_copy(update={"oem_connections": []}))
    assert (tesla.limiter.rate, tesla.limiter.burst) == (2.5, 3)
    assert settings.oem_connection(1).rate_per_second == 40.0
    own = OemConnection(
        connection_id=7,
        kind="tesla",
        name="fleet",
        api_url="x",
        auth_url="x",
        token_url="x",
        rate_per_second=9,
    )
    assert settings.model_copy(update={"oem_connections": [own]}).oem_connection(7).rate_per_second == 9.0
