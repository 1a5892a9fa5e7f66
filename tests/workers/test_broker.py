"""workers/broker.py: a task message taken off its Redis queue just before the broker goes
down is put back when the worker consumes again, where kombu's own transport loses it.

The broker is a private redis-server with its append-only file on; it is stopped at the one
moment that matters, between `BRPOP` handing the message over and the command that records
it as unacknowledged (the consumer's record step is wrapped to stop the server first)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.transport import redis as kombu_redis

from tests.support.celery_worker import RedisServer
from workers.app import create_app
from workers.broker import BROKER_ERRORS, HELD, TRANSPORT_PATH
from workers.config import Settings

QUEUE = Queue("indexer", Exchange("indexer", type="direct"), routing_key="indexer")


def stop_broker_before_recording(monkeypatch: pytest.MonkeyPatch, server: RedisServer) -> None:
    """The next message the consumer takes finds the broker gone when it records it."""
    record = kombu_redis.QoS.append

    def broker_gone_first(self: kombu_redis.QoS, message: object, delivery_tag: str) -> None:
        monkeypatch.setattr(kombu_redis.QoS, "append", record)
        server.stop()
        record(self, message, delivery_tag)

    monkeypatch.setattr(kombu_redis.QoS, "append", broker_gone_first)


def consume_one(url: str, transport: str, received: list[dict[str, int]]) -> None:
    """Consumes from QUEUE on a new connection until one message came or 3 s passed."""

    def on_message(body: dict[str, int], message: object) -> None:
        received.append(body)
        message.ack()  # type: ignore[attr-defined]

    with (
        Connection(url, transport=transport) as connection,
        Consumer(connection, [QUEUE], callbacks=[on_message], accept=["json"]),
        contextlib.suppress(TimeoutError),
    ):
        connection.drain_events(timeout=3)


@contextmanager
def taken_as_the_broker_went_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str, body: dict[str, int]
) -> Iterator[RedisServer]:
    """A private persistent broker with `body` published, taken by a consumer just as the
    broker stopped (the consumer failed, nothing received), then the broker restarted."""
    server = RedisServer(tmp_path, persistent=True)
    try:
        with Connection(server.url, transport=transport) as connection:
            Producer(connection).publish(
                body, exchange=QUEUE.exchange, routing_key="indexer", declare=[QUEUE], serializer="json"
            )
        stop_broker_before_recording(monkeypatch, server)
        received: list[dict[str, int]] = []
        with pytest.raises(BROKER_ERRORS):
            consume_one(server.url, transport, received)
        assert received == []
        server.restart()
        yield server
    finally:
        HELD.take()
        server.stop()


@pytest.mark.parametrize(
    ("transport", "delivered"),
    [(TRANSPORT_PATH, [{"task": 1}]), ("redis", [])],
    ids=["workers-transport", "kombu-loses-it"],
)
def test_a_message_taken_as_the_broker_goes_down_is_delivered_after_it_returns(
    tmp_path, monkeypatch, transport, delivered
):
    with taken_as_the_broker_went_down(tmp_path, monkeypatch, transport, {"task": 1}) as server:
        received: list[dict[str, int]] = []
        consume_one(server.url, transport, received)
        assert received == delivered
        assert len(HELD) == 0
        store = redis.Redis.from_url(server.url)
        assert store.llen("indexer") == 0 and store.hlen("unacked") == 0  # acknowledged, gone


def test_a_held_message_goes_back_to_its_queue_when_the_broker_lost_the_bindings(tmp_path, monkeypatch):
    """The first channel to consume after a reconnect may be another queue's (the worker's
    control queue), on a broker that came back without the exchange's bindings (a fresh
    replica): the held task still goes back to the queue named after its routing key."""
    with taken_as_the_broker_went_down(tmp_path, monkeypatch, TRANSPORT_PATH, {"task": 2}) as server:
        redis.Redis.from_url(server.url).delete("_kombu.binding.indexer")
        other = Queue("other", Exchange("other", type="direct"), routing_key="other")
        with Connection(server.url, transport=TRANSPORT_PATH) as connection, Consumer(connection, [other]):
            assert len(HELD) == 0
        received: list[dict[str, int]] = []
        consume_one(server.url, TRANSPORT_PATH, received)
        assert received == [{"task": 2}]


def test_the_app_uses_the_workers_transport_on_redis_only():
    on_redis = create_app(Settings(broker_url="redis://127.0.0.1:6379/0"))
    on_rabbitmq = create_app(Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//"))
    assert on_redis.connection_for_read().transport_cls == TRANSPORT_PATH
    assert on_rabbitmq.connection_for_read().transport_cls == "amqp"
