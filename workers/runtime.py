"""What one worker or gateway process holds, built from its `Settings`: the database, the
chain handle (with its read-only views), and the long-lived services built on them (the
indexer, kept for its warm row cache, and settlement). The Celery app (workers/app.py) holds
one Runtime for its tasks; each gateway app holds one in its state. Nothing here connects
before first use: a gateway starts without a chain, a Celery producer without a database.

No module keeps connections of its own: tests that switch settings build another Runtime,
and `close()` one they are done with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine

from workers.chain.deployment import connect
from workers.chain.views import Chain
from workers.config import Settings
from workers.db.session import Database
from workers.indexer.sync import Indexer

if TYPE_CHECKING:
    from workers.chain.outbox import TxSender
    from workers.settlement.roots import Settlement

T = TypeVar("T")


class Runtime:
    """One process's connections and services for one `Settings` (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}

    def _once(self, name: str, build: Callable[[], T]) -> T:
        # One lock per service: a slow chain connection does not hold up database sessions.
        if name in self._built:
            return self._built[name]
        with self._locks.setdefault(name, threading.Lock()):
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    @property
    def database(self) -> Database:
        """DATABASE_URL's engine and transactions (`runtime.database.session()`)."""
        return self._once(
            "database", lambda: Database(self.settings.database_url, echo=self.settings.database_echo)
        )

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def chain(self) -> Chain:
        """RPC_URL with the deployment manifest verified against it, connected on first use."""
        return self._once("chain", lambda: connect(self.settings))

    @property
    def indexer(self) -> Indexer:
        return self._once("indexer", lambda: Indexer(self.chain, self.engine, self.settings))

    @property
    def settlement(self) -> Settlement:
        # Imported here, not above: the gateway holds a Runtime too, and serving never loads
        # the code that moves money (workers.chain.outbox).
        from workers.settlement.roots import Settlement  # noqa: PLC0415

        return self._once("settlement", lambda: Settlement(self.chain, self.engine, self.settings))

    @property
    def settler(self) -> TxSender:
        """Transactions from SETTLER_KEY (the access sweep's expireOrder)."""
        from workers.chain.outbox import TxSender  # noqa: PLC0415 - see `settlement`

        return self._once(
            "settler",
            lambda: TxSender(self.chain, self.settings.settler_key.get_secret_value(), self.settings),
        )

    def close(self) -> None:
        """Closes the database's connections and forgets every service (they are rebuilt on
        next use)."""
        database = self._built.get("database")
        self._built.clear()
        if database is not None:
            database.dispose()
