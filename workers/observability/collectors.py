"""Gauges read when Prometheus scrapes (`python -m workers.metrics`), never counted by the code:
a state read from its source cannot drift from it, and a restarted worker loses nothing.

- `DatabaseCollector`: the indexer's lag behind the node's head *now* (the indexed block from
  the indexer's health row, the head from the node at scrape time: the lag grows while the
  indexer is stopped), settlement roots by status and periods closed, the transaction outbox
  by status and its oldest pending transaction.
- `BrokerCollector`: Celery queue depths (Redis: LLEN of each queue's lists, and the
  transport's unacknowledged hash; RabbitMQ: a passive queue.declare's message count).

A source that does not answer sets its `workers_<source>_up` to 0 and exports nothing else
(the scrape itself succeeds): alert on the `_up` gauges, not on missing series."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC

import redis
from kombu import Connection
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Connection as DbConnection
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from workers.config import Settings
from workers.db.indexing import IndexerHealth
from workers.db.settlement import ChainTx, SettlementPeriod, SettlementProduct, SettlementRoot

log = logging.getLogger(__name__)

#: Every status of a settlement root (workers/db/settlement.py SettlementRoot): each is
#: exported, at 0 when no root has it. `proposed` is pending on chain (challengeable).
ROOT_STATUSES = (
    "computed",
    "proposing",
    "proposed",
    "accepting",
    "accepted",
    "failed",
    "revoked",
    "replaced",
)
#: Every status of an outgoing transaction (ChainTx); `signed` and `sent` are pending.
TX_STATUSES = ("signed", "sent", "mined", "reverted", "dropped")
PENDING_TX_STATUSES = ("signed", "sent")
#: kombu's Redis transport keeps a queue's messages of priority p > 0 in `<queue>\x06\x16<p>`,
#: and the messages delivered but not acknowledged in one hash.
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_UNACKED_KEY = "unacked"

#: (block number, timestamp) of the node's head.
NodeHead = Callable[[], tuple[int, int]]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by_label(name: str, documentation: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class DatabaseCollector:
    """The indexer's lag, settlement and the outbox, from the database (and the node's head)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        node_head: NodeHead,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.node_head = node_head
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        head: tuple[int, int] | None
        try:
            head = self.node_head()
        except Exception as exc:  # any failure of the node is "down" for this scrape
            log.warning("metrics: the node's head could not be read: %s", exc)
            head = None
        yield _gauge("workers_node_up", "1 when the node answered its head at this scrape", head is not None)
        try:
            with self.engine.connect() as conn:
                families = [
                    *self._indexer(conn, head, now),
                    *self._settlement(conn, now),
                    *self._outbox(conn, now),
                ]
        except SQLAlchemyError as exc:
            log.warning("metrics: the database could not be read: %s", exc)
            yield _gauge("workers_database_up", "1 when the database answered at this scrape", 0)
            return
        yield _gauge("workers_database_up", "1 when the database answered at this scrape", 1)
        yield from families

    @staticmethod
    def _indexer(conn: DbConnection, head: tuple[int, int] | None, now: float) -> Iterable[Metric]:
        table = IndexerHealth.__table__
        health = (
            conn.execute(select(table).order_by(table.c.indexed_block.desc()).limit(1)).mappings().first()
        )
        if health is None:
            return []  # the indexer never reported: nothing to measure yet
        indexed, indexed_ts = int(health["indexed_block"]), int(health["indexed_timestamp"])
        families = [
            _gauge("workers_indexer_indexed_block", "The last block the indexer applied", indexed),
            _gauge(
                "workers_indexer_report_age_seconds",
                "Seconds since the indexer last reported its health (it stopped ticking when this grows)",
                max(now - float(health["checked_at"]), 0.0),
            ),
            _gauge(
                "workers_indexer_halted",
                "1 while indexing is halted (see the indexer's logs)",
                bool(health["halted"]),
            ),
        ]
        if head is not None:
            number, timestamp = head
            families += [
                _gauge("workers_indexer_head_block", "The node's head block at this scrape", number),
                _gauge(
                    "workers_indexer_blocks_behind",
                    "Blocks between the node's head now and the last indexed block",
                    max(number - indexed, 0),
                ),
                _gauge(
                    "workers_indexer_seconds_behind",
                    "Seconds between the node's head block now and the last indexed block",
                    max(timestamp - indexed_ts, 0),
                ),
            ]
        return families

    def _settlement(self, conn: DbConnection, now: float) -> Iterable[Metric]:
        counts = dict.fromkeys(ROOT_STATUSES, 0.0)
        for status, count in conn.execute(
            select(SettlementRoot.status, func.count()).group_by(SettlementRoot.status)
        ):
            counts[status] = float(count)
        closed = conn.execute(select(func.count()).select_from(SettlementPeriod)).scalar() or 0
        oldest_open = conn.execute(select(func.min(SettlementProduct.next_period))).scalar()
        # Periods that ended more than the grace ago may close: those before this one.
        closable = int((now - self.settings.settlement_grace_seconds) // self.settings.epoch_seconds)
        behind = max(closable - int(oldest_open), 0) if oldest_open is not None else 0
        return [
            _by_label("workers_settlement_roots", "Settlement roots by status", "status", counts),
            _gauge(
                "workers_settlement_periods_closed",
                "Closed settlement periods that released something (settlement_periods rows)",
                closed,
            ),
            _gauge(
                "workers_settlement_periods_behind",
                "Ended periods (past SETTLEMENT_GRACE_SECONDS, by the wall clock) of the most "
                "behind product not closed yet",
                behind,
            ),
        ]

    @staticmethod
    def _outbox(conn: DbConnection, now: float) -> Iterable[Metric]:
        counts = dict.fromkeys(TX_STATUSES, 0.0)
        for status, count in conn.execute(select(ChainTx.status, func.count()).group_by(ChainTx.status)):
            counts[status] = float(count)
        oldest = conn.execute(
            select(func.min(func.coalesce(ChainTx.sent_at, ChainTx.created_at))).where(
                ChainTx.status.in_(PENDING_TX_STATUSES)
            )
        ).scalar()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)  # SQLite hands back naive UTC
        age = max(now - oldest.timestamp(), 0.0) if oldest is not None else 0.0
        return [
            _by_label("workers_tx_outbox", "The workers' transactions by status", "status", counts),
            _gauge(
                "workers_tx_oldest_pending_seconds",
                "Seconds since the oldest signed or sent transaction was sent (0: none pending)",
                age,
            ),
        ]


class BrokerCollector:
    """Celery queue depths, read from the broker at scrape time."""

    def __init__(self, broker_url: str, queues: Sequence[str]) -> None:
        self.broker_url = broker_url
        self.queues = tuple(queues)
        scheme = broker_url.split("://", 1)[0].lower()
        self.kind = (
            "redis" if scheme in ("redis", "rediss") else "amqp" if scheme in ("amqp", "pyamqp") else None
        )
        if self.kind is None:
            log.warning("metrics: no queue depths for a %s:// broker (Redis and RabbitMQ only)", scheme)
        self._redis = redis.Redis.from_url(broker_url, socket_timeout=5) if self.kind == "redis" else None

    def collect(self) -> Iterator[Metric]:
        if self.kind is None:
            return
        try:
            depths, unacked = self._redis_depths() if self._redis is not None else (self._amqp_depths(), None)
        except Exception as exc:  # any failure of the broker is "down" for this scrape
            log.warning("metrics: the broker could not be read: %s", exc)
            yield _gauge("workers_broker_up", "1 when the broker answered at this scrape", 0)
            return
        yield _gauge("workers_broker_up", "1 when the broker answered at this scrape", 1)
        yield _by_label("workers_celery_queue_length", "Tasks waiting in each Celery queue", "queue", depths)
        if unacked is not None:
            yield _gauge(
                "workers_celery_unacked",
                "Tasks delivered to a worker and not acknowledged yet (Redis broker)",
                unacked,
            )

    def _redis_depths(self) -> tuple[dict[str, float], float]:
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        for queue in self.queues:
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{REDIS_PRIORITY_SEP}{step}" if step else queue)
        pipe.hlen(REDIS_UNACKED_KEY)
        answers = pipe.execute()
        steps = len(REDIS_PRIORITY_STEPS)
        depths = {q: float(sum(answers[i * steps : (i + 1) * steps])) for i, q in enumerate(self.queues)}
        return depths, float(answers[-1])

    def _amqp_depths(self) -> dict[str, float]:
        """A passive queue.declare answers a queue's ready messages without the management
        plugin; a queue not declared yet (no worker ever consumed it) holds none."""
        depths: dict[str, float] = {}
        with Connection(self.broker_url, connect_timeout=5) as conn:
            for queue in self.queues:
                channel = conn.channel()
                try:
                    depths[queue] = float(channel.queue_declare(queue=queue, passive=True).message_count)
                except conn.channel_errors:
                    depths[queue] = 0.0  # 404 NOT_FOUND closed this channel; the next opens anew
                finally:
                    channel.close()
        return depths
