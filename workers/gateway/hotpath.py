"""The two statements of a metered call, on raw DBAPI connections (one per database thread),
compiled once: the read of the vehicle's latest values, and the spend, which takes one credit
and counts the call in the usage counters together, only while the caller's session is live.

PostgreSQL: the spend is one statement (a data-modifying CTE: the conditional UPDATE of the
credit counter, the usage upsert fed by what it returned), in autocommit: atomic on its own.
SQLite: the UPDATE … RETURNING and the usage upsert in one BEGIN IMMEDIATE transaction.
Either way two concurrent calls never take the last credit twice: the UPDATE's
`remaining > 0` is re-checked under the row lock (PostgreSQL) or the database lock (SQLite).

The calls run on a small thread pool (GATEWAY_DB_THREADS), off the event loop, so calls
waiting on the database overlap; 0 runs them on the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.sql import ClauseElement

from workers.db.base import UINT256_DIGITS
from workers.protocol import ZERO_ADDRESS
from workers.signals.store import LATEST_QUERY, SignalValue

T = TypeVar("T")

_CREDIT = """UPDATE gateway_api_credits SET remaining = remaining - 1
WHERE order_id = :order_id AND product_id = :product_id AND remaining > 0 AND NOT expired
AND EXISTS (SELECT 1 FROM gateway_sessions
            WHERE id = :session_id AND revoked_at IS NULL AND expires_at > :now)
RETURNING remaining"""
_COUNT_KEY = "(product_id, order_id, vehicle_id, period, owner)"
_COUNT_SET = f"ON CONFLICT {_COUNT_KEY} DO UPDATE SET units = usage_counters.units + 1"
_COUNT = f"""INSERT INTO usage_counters {_COUNT_KEY[:-1]}, units)
VALUES (:consent_id, :usage_order_id, :vehicle_id, :period, :owner, 1) {_COUNT_SET}"""
#: PostgreSQL: the credit and the usage counter in one statement.
_SPEND_CTE = f"""WITH spent AS ({_CREDIT}),
counted AS (INSERT INTO usage_counters {_COUNT_KEY[:-1]}, units)
            SELECT :consent_id, :usage_order_id, :vehicle_id, :period, :owner, 1 FROM spent {_COUNT_SET})
SELECT remaining FROM spent"""


class Compiled:
    """A statement compiled once for one database, executed on a DBAPI cursor."""

    def __init__(self, statement: ClauseElement, engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self._positional = tuple(compiled.positiontup or ()) if engine.dialect.positional else None

    def params(self, values: dict[str, Any]) -> Any:
        if self._positional is None:
            return values
        return tuple(values[name] for name in self._positional)


class MeteredStore:
    """The metered call's statements on connections held one per database thread."""

    def __init__(self, engine: Engine, threads: int, counted: Callable[[int], None]) -> None:
        self._engine = engine
        self._counted = counted
        self.postgres = engine.dialect.name == "postgresql"
        self._latest = Compiled(LATEST_QUERY, engine)
        self._credit = Compiled(text(_CREDIT), engine)
        self._count = Compiled(text(_COUNT), engine)
        self._spend = Compiled(text(_SPEND_CTE), engine)
        self._local = threading.local()
        self._held: list[Any] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="gateway-db") if threads else None

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` on a database thread (on the event loop when there are none)."""
        if self._pool is None:
            return call(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    def _uint(self, value: int) -> Any:
        return value if self.postgres else f"{value:0{UINT256_DIGITS}d}"

    def _connection(self) -> Any:
        held = getattr(self._local, "connection", None)
        if held is None:
            held = self._engine.raw_connection()
            dbapi = held.dbapi_connection
            if self.postgres:
                dbapi.rollback()  # the pool's ping may have begun one
                dbapi.autocommit = True  # each statement its own transaction
            self._local.connection = held
            with self._lock:
                self._held.append(held)
        return held.dbapi_connection

    def _drop(self) -> None:
        """Forgets this thread's connection after an error (it may be broken)."""
        held = self._local.__dict__.pop("connection", None)
        if held is not None:
            with self._lock:
                self._held.remove(held)
            held.invalidate()

    def _execute(self, work: Callable[[Any], T]) -> T:
        try:
            cursor = self._connection().cursor()
            try:
                return work(cursor)
            finally:
                cursor.close()
        except Exception:
            self._drop()
            raise

    def latest(self, vehicle_id: int, since_ms: int) -> tuple[list[SignalValue], bool]:
        """The vehicle's newest observation of each signal made at or after `since_ms`, and
        whether it has live privacy zones (the caller then applies `zones.coarsen`)."""
        values = {"vehicle_id": self._uint(vehicle_id), "since_ms": since_ms}

        def read(cursor: Any) -> list[Any]:
            cursor.execute(self._latest.sql, self._latest.params(values))
            return cursor.fetchall()

        rows = self._execute(read)
        self._counted(1)
        found = [
            SignalValue(name, json.loads(value), unit, int(ts), source, sig)
            for name, value, unit, ts, source, sig, _ in rows
        ]
        return found, bool(rows) and bool(rows[0][6])

    def spend(
        self,
        *,
        session_id: str,
        now: int,
        order_id: int,
        product_id: int,
        consent_id: int,
        vehicle_id: int,
        period: int,
        owner: str | None,
    ) -> int | None:
        """Takes one credit of the order's counter for `product_id` and counts the call for
        (consent product, order, vehicle, period, owner), while session `session_id` is
        live: the credits left, or None when nothing was taken (no counter yet, none left,
        expired, or the session is not live: the caller tells which)."""
        values = {
            "session_id": session_id,
            "now": now,
            "order_id": order_id,
            "product_id": product_id,
            "consent_id": self._uint(consent_id),
            "usage_order_id": self._uint(order_id),
            "vehicle_id": self._uint(vehicle_id),
            "period": period,
            "owner": (owner or ZERO_ADDRESS).lower(),
        }
        return self._execute(lambda cursor: self._spend_on(cursor, values))

    def _spend_on(self, cursor: Any, values: dict[str, Any]) -> int | None:
        if self.postgres:
            cursor.execute(self._spend.sql, self._spend.params(values))
            row = cursor.fetchone()
            self._counted(1)
            return None if row is None else int(row[0])
        cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.execute(self._credit.sql, self._credit.params(values))
            row = cursor.fetchone()
            if row is not None:
                cursor.execute(self._count.sql, self._count.params(values))
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        self._counted(3 if row is None else 4)
        return None if row is None else int(row[0])

    def close(self) -> None:
        """Stops the threads and closes the held connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            connection.invalidate()
