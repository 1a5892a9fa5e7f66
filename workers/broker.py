"""The Redis transport the workers' Celery app uses: kombu's, with the one window closed in
which it loses a task.

kombu emulates acknowledgements on Redis in two steps: `BRPOP` takes the message off its
queue, then a second command records it as unacknowledged (a hash and a sorted set that
`restore_visible` puts back after the visibility timeout). If the broker goes down between
the two (a restart while the worker is descheduled for a few milliseconds), the message is in
neither place: only the worker's memory holds it, and kombu drops it with the connection
error. Here the worker keeps such a message (`HELD`) and puts it back at the head of its
queue as soon as it consumes on a new connection. What stays open is the worker dying in the
same seconds as the broker: RabbitMQ (`BROKER_URL=amqp://...`) has no such window.

    celery conf: broker_transport = "workers.broker:Transport"   (only for redis:// URLs)
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

log = logging.getLogger(__name__)

#: What a failed record of a taken message raises: a lost connection (TimeoutError is not a
#: ConnectionError), or a broker that answers but refuses writes (read-only after a failover,
#: out of memory, MISCONF): either way the message is only in this process.
BROKER_ERRORS = (redis.exceptions.RedisError, OSError)

#: The import path Celery's `broker_transport` names for redis:// broker URLs.
TRANSPORT_PATH = "workers.broker:Transport"
#: Broker URL schemes that mean Redis.
REDIS_SCHEMES = ("redis://", "rediss://")


class HeldMessages:
    """Messages this process took off a queue and could not record as unacknowledged:
    (raw message, exchange, routing key), kept until a channel puts them back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[dict[str, Any], str, str]] = []

    def hold(self, raw: dict[str, Any], exchange: str, routing_key: str) -> None:
        with self._lock:
            self._messages.append((raw, exchange, routing_key))

    def take(self) -> list[tuple[dict[str, Any], str, str]]:
        with self._lock:
            taken, self._messages = self._messages, []
        return taken

    def give_back(self, messages: list[tuple[dict[str, Any], str, str]]) -> None:
        with self._lock:
            self._messages = messages + self._messages

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)


#: One per process (one broker per process): a worker's connections come and go, what it
#: holds outlives them. A forked child starts with none, or both would put them back.
HELD = HeldMessages()
os.register_at_fork(after_in_child=HELD.take)


class QoS(kombu_redis.QoS):
    """kombu's acknowledgement emulation; a message it cannot record is held, not dropped."""

    def append(self, message: Any, delivery_tag: str) -> None:
        try:
            super().append(message, delivery_tag)
        except BROKER_ERRORS:
            delivery = message.delivery_info
            HELD.hold(message._raw, delivery["exchange"], delivery["routing_key"])
            log.warning(
                "broker lost after taking task message %s off queue %s: held until reconnected",
                delivery_tag,
                delivery["routing_key"],
            )
            raise


class Channel(kombu_redis.Channel):
    """kombu's Redis channel; before it consumes, it puts back what this process holds."""

    QoS = QoS

    def basic_consume(self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any) -> Any:
        """Starts consuming `queue` (kombu's), after re-queuing held messages."""
        self.requeue_held()
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def requeue_held(self) -> int:
        """Pushes every held message back at the head of the queues its exchange and routing
        key bind to, marked redelivered, in one transaction; on any failure they stay held.
        Returns how many went back."""
        held = HELD.take()
        if not held:
            return 0
        try:
            with self.conn_or_acquire() as client:
                pipe = client.pipeline()
                for raw, exchange, routing_key in held:
                    self._push_back(raw, exchange, routing_key, pipe)
                pipe.execute()
        except BaseException:
            HELD.give_back(held)
            raise
        log.warning("re-queued %d task message(s) taken before the broker was lost", len(held))
        return len(held)

    def _push_back(self, raw: dict[str, Any], exchange: str, routing_key: str, pipe: Any) -> None:
        raw.setdefault("headers", {})["redelivered"] = True
        raw.setdefault("properties", {}).setdefault("delivery_info", {})["redelivered"] = True
        priority = self._get_message_priority(raw, reverse=False)
        # The bindings live in Redis; a broker that lost them (a fresh replica) still has the
        # queue the app names after its routing key (workers/app.py), never nowhere.
        queues = self._lookup(exchange, routing_key) or [routing_key]
        for queue in queues:
            # The consumer pops from the right: RPUSH puts the message first in line again.
            pipe.rpush(self._q_for_pri(queue, priority), dumps(raw))


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with `Channel` above."""

    Channel = Channel
