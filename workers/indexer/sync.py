"""The indexer: backfill with adaptive eth_getLogs ranges, follow the head at a confirmation
depth, and roll back to the fork point when a block hash it applied changes.

One `Indexer.sync()` brings the database from its cursor to `head - CONFIRMATIONS` and
returns. It is idempotent: each batch of blocks is applied in one database transaction
together with the blocks' hashes and the cursor, after re-checking that the cursor is still
where the batch starts; a second, concurrent sync finds the lock taken and returns.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak
from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.engine import make_url

from workers.chain import Chain, RangeTooLargeError, Rpc, RpcError, TransientRpcError, with_rpc_retries
from workers.config import Settings
from workers.db import for_update
from workers.db.indexing import ChainEvent, IndexedBlock, IndexerCursor, UndoRecord
from workers.indexer import health
from workers.indexer.decode import Decoder, Event
from workers.indexer.handlers import handler_for, load_handlers
from workers.indexer.store import Store, rollback_to
from workers.indexer.views import ViewAtBlockError, attach_views, view_for
from workers.observability import metrics

log = logging.getLogger(__name__)

CURSOR = "main"
#: Grow the eth_getLogs range after a success that returned fewer logs than this.
GROW_BELOW_LOGS = 20_000
#: Successes after which a refused range size may be tried again.
CEILING_SUCCESSES = 64
#: Apply at most about this many events per database transaction.
EVENTS_PER_TRANSACTION = 25_000
#: Canonical hashes fetched per round while looking for the fork point.
FORK_SEARCH_CHUNK = 64


class IndexerError(RuntimeError):
    """The indexer cannot go on without someone fixing something (said in the message)."""


class ReorgTooDeepError(IndexerError):
    """The chain changed below the blocks the indexer kept undo records for."""


class ChainMovedError(RuntimeError):
    """The chain reorganised while a range was being read; the sync retries from the cursor."""


class LogsIncompleteError(ChainMovedError):
    """A block's `logsBloom` names the deployment's contracts but the range's eth_getLogs
    answer had no log of that block, and the block's own logs (by hash) do not confirm that
    it has none: a lagging or lying node. The sync retries without advancing."""


@dataclass
class SyncReport:
    """What one sync did."""

    head: int = 0
    target: int = 0
    from_block: int = 0
    last_block: int = 0
    blocks: int = 0
    events: int = 0
    skipped_logs: int = 0
    rollbacks: list[tuple[int, int]] = field(default_factory=list)  # (from last_block, to fork block)
    busy: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Batch:
    """Blocks [first, last] read from the chain, ready to apply."""

    first: int
    last: int
    last_hash: str
    events: list[Event]
    blocks: dict[int, tuple[str, str | None, int | None]]  # number → (hash, parent, timestamp)


def deployment_fingerprint(chain: Chain) -> str:
    body = json.dumps(
        {
            "chain_id": chain.chain_id,
            "contracts": {k: v.lower() for k, v in sorted(chain.manifest.contracts.items())},
        }
    )
    return "0x" + keccak(text=body).hex()


class Indexer:
    """Applies the deployment's events to the database behind `engine`."""

    def __init__(self, chain: Chain, engine: Engine, settings: Settings) -> None:
        self.chain = chain
        self.rpc: Rpc = chain.rpc
        self.engine = engine
        self.settings = settings
        load_handlers()
        self.decoder = Decoder.for_manifest(chain.manifest)
        self.addresses = sorted(a.lower() for a in chain.manifest.contracts.values())
        self.range = min(self.settings.log_range_initial, self.settings.log_range_max)
        self.fingerprint = deployment_fingerprint(chain)
        self._store: Store | None = None
        self._ceiling: int | None = None
        self._successes = 0
        #: The cursor (block, hash) the cached rows are the state of; None: nothing cached.
        self._cache_at: tuple[int, str | None] | None = None
        #: Bloom bits of each contract address: a block whose bloom lacks them has no log of ours.
        self._address_bits = [_bloom_bits(bytes.fromhex(a[2:])) for a in self.addresses]
        #: The chain head (number, timestamp) read by the current sync, for the health report.
        self._head: tuple[int, int] | None = None
        #: The node's `finalized` block in the current sync (None: the chain has no such tag).
        self._finalized: int | None = None

    # --- the cursor -----------------------------------------------------------------------

    def _cursor(self, conn: Connection, *, lock: bool = False) -> IndexerCursor | None:
        table = IndexerCursor.__table__
        query = select(table).where(table.c.name == CURSOR)
        if lock:
            query = for_update(query)
        row = conn.execute(query).mappings().first()
        return IndexerCursor(**row) if row else None

    def _ensure_cursor(self) -> IndexerCursor:
        with self.engine.begin() as conn:
            cursor = self._cursor(conn, lock=True)
            if cursor is None:
                start = self.chain.manifest.block
                conn.execute(
                    insert(IndexerCursor.__table__).values(
                        name=CURSOR,
                        chain_id=self.chain.chain_id,
                        deployment=self.fingerprint,
                        start_block=start,
                        last_block=start - 1,
                        last_hash=None,
                        undo_from=None,
                    )
                )
                cursor = self._cursor(conn)
            assert cursor is not None
        if cursor.chain_id != self.chain.chain_id or cursor.deployment != self.fingerprint:
            raise IndexerError(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} indexes another "
                f"deployment (chain {cursor.chain_id}, {cursor.deployment}); this one is chain "
                f"{self.chain.chain_id}, {self.fingerprint} from {self.chain.manifest_file}: "
                "use a fresh DATABASE_URL for it"
            )
        return cursor

    # --- one sync ---------------------------------------------------------------------------

    def sync(self, max_blocks: int | None = None) -> SyncReport:
        """Applies confirmed blocks from the cursor to head - CONFIRMATIONS (at most `max_blocks`)."""
        started = time.perf_counter()
        report = SyncReport()
        with self._exclusive() as acquired:
            if not acquired:
                report.busy = True
                return report
            try:
                self._sync(report, max_blocks or self.settings.sync_max_blocks)
            except IndexerError as exc:
                metrics.HALTS.inc()
                self._forget()
                self._report_health(halted=str(exc))
                raise
            except BaseException:
                self._forget()
                raise
        report.seconds = time.perf_counter() - started
        report.skipped_logs = self.decoder.skipped
        return report

    def _sync(self, report: SyncReport, max_blocks: int) -> None:
        cursor = self._ensure_cursor()
        latest = with_rpc_retries(self.rpc.get_block_by_tag, "latest")
        head = int(latest["number"], 16)
        self._head = (head, int(latest["timestamp"], 16))
        finalized = with_rpc_retries(self.rpc.get_block_by_tag, "finalized")
        self._finalized = int(finalized["number"], 16) if finalized else None
        report.head = head
        report.target = target = head - self.settings.confirmations
        report.from_block = cursor.last_block + 1
        moved: ChainMovedError | None = None
        for attempt in range(self.settings.log_range_max_failures):
            try:
                cursor = self._check_reorg(cursor, report)
                self._advance(cursor, head, min(target, cursor.last_block + max_blocks), report)
                break
            except ChainMovedError as exc:
                moved = exc
                log.info("chain moved while reading (%s); re-checking from the cursor", exc)
                if isinstance(exc, LogsIncompleteError):
                    time.sleep(min(0.1 * 2**attempt, 2.0))  # give a lagging node time to catch up
                with self.engine.connect() as conn:
                    cursor = self._cursor(conn) or cursor
        else:
            raise IndexerError(
                "the chain kept reorganising under the indexer or its node kept answering "
                f"incomplete logs ({self.settings.log_range_max_failures} tries; last: {moved})"
            )
        with self.engine.begin() as conn:
            final = self._cursor(conn)
            report.last_block = final.last_block if final else cursor.last_block
            # Undo records below the window can never be needed again.
            floor = head - self.settings.reorg_window
            conn.execute(delete(UndoRecord.__table__).where(UndoRecord.block_number <= floor))
            conn.execute(
                update(IndexerCursor.__table__)
                .where(IndexerCursor.name == CURSOR, IndexerCursor.undo_from <= floor)
                .values(undo_from=floor + 1)
            )
            self._write_health(conn, halted=None)

    # --- health -------------------------------------------------------------------------------

    def _write_health(self, conn: Connection, *, halted: str | None) -> None:
        cursor = self._cursor(conn)
        indexed = cursor.last_block if cursor is not None else -1
        indexed_ts = conn.execute(
            select(IndexedBlock.timestamp)
            .where(IndexedBlock.number <= indexed, IndexedBlock.timestamp.is_not(None))
            .order_by(IndexedBlock.number.desc())
            .limit(1)
        ).scalar()
        head, head_ts = self._head if self._head is not None else (indexed, int(indexed_ts or 0))
        health.report(
            conn,
            CURSOR,
            chain_head=head,
            chain_head_timestamp=head_ts,
            indexed_block=indexed,
            indexed_timestamp=int(indexed_ts or 0),
            halted=halted,
        )

    def _report_health(self, *, halted: str) -> None:
        """Records that indexing stopped: the gateway stops serving until a sync succeeds."""
        try:
            with self.engine.begin() as conn:
                self._write_health(conn, halted=halted)
        except Exception:  # the database may be what failed; the error is raised anyway
            log.exception("could not record the indexer's halt")

    def _advance(self, cursor: IndexerCursor, head: int, target: int, report: SyncReport) -> None:
        next_block = cursor.last_block + 1
        last_hash = cursor.last_hash
        while next_block <= target:
            last, logs = self._fetch(next_block, target)
            for batch in self._prepare(next_block, last, logs, head, last_hash):
                self._apply(batch, head)
                report.blocks += batch.last - batch.first + 1
                report.events += len(batch.events)
                last_hash = batch.last_hash
            next_block = last + 1

    # --- reading the chain ------------------------------------------------------------------

    def _fetch(self, first: int, target: int) -> tuple[int, list[dict[str, Any]]]:
        """Logs of [first, last] for the largest `last` <= target the node accepts."""
        size = self.range
        failures = 0
        while True:
            last = min(target, first + size - 1)
            try:
                logs = self.rpc.get_logs(self.addresses, first, last)
            except RangeTooLargeError as exc:
                span = last - first + 1
                if span <= self.settings.log_range_min:
                    raise IndexerError(
                        f"the node refuses eth_getLogs even for blocks {first}..{last}: {exc}"
                    ) from exc
                # Halving the refused span gets under the node's limit in log2 steps; that
                # size then caps growth until CEILING_SUCCESSES successes forget it.
                size = max(self.settings.log_range_min, span // 2)
                self._ceiling = size
                self._successes = 0
                log.info("eth_getLogs %d..%d refused (%s); range now %d blocks", first, last, exc, size)
                continue
            except TransientRpcError as exc:
                failures += 1
                if failures >= self.settings.log_range_max_failures:
                    raise
                # A timeout may mean the range is too heavy; a 429 means wait.
                if exc.retry_after is None:
                    size = max(self.settings.log_range_min, size // 2)
                delay = exc.retry_after if exc.retry_after is not None else min(0.1 * 2**failures, 5.0)
                log.warning(
                    "eth_getLogs %d..%d: %s; retry in %.2fs with %d blocks", first, last, exc, delay, size
                )
                time.sleep(delay)
                continue
            self._grow(size, last - first + 1, len(logs))
            return last, logs

    def _grow(self, size: int, span: int, logs: int) -> None:
        """After a success: double the range when the whole range was used and logs were few,
        but not past the last refused size until it is forgotten."""
        self._successes += 1
        if self._ceiling is not None and self._successes >= CEILING_SUCCESSES:
            self._ceiling = None
        if span < size or logs >= GROW_BELOW_LOGS:
            self.range = size
            return
        grown = min(self.settings.log_range_max, size * 2)
        self.range = max(size, min(grown, self._ceiling)) if self._ceiling is not None else grown

    def _prepare(
        self, first: int, last: int, logs: list[dict[str, Any]], head: int, parent_hash: str | None
    ) -> Iterator[Batch]:
        """Decodes `logs` and checks them against block headers; yields batches to apply."""
        if any(entry.get("removed") for entry in logs):
            raise ChainMovedError(f"removed logs in {first}..{last}")
        events: list[Event] = []
        for entry in logs:
            event = self.decoder.decode(entry)
            if event is not None:
                events.append(event)
        events.sort(key=lambda e: (e.block_number, e.log_index))
        blocks: dict[int, tuple[str, str | None, int | None]] = {}
        for event in events:
            known = blocks.get(event.block_number)
            if known is not None and known[0] != event.block_hash:
                raise ChainMovedError(f"block {event.block_number} has logs of two different hashes")
            if known is None:
                blocks[event.block_number] = (event.block_hash, None, event.block_timestamp)
        # Headers are read and checked (hashes linked, blooms) for every block inside the reorg
        # window and, on a chain whose finality lags more than the window, every block the
        # node does not call finalized yet.
        window_start = head - self.settings.reorg_window + 1
        if self._finalized is not None:
            window_start = min(window_start, self._finalized + 1)
        wanted = sorted(
            {last}
            | set(range(max(first, window_start), last + 1))
            | {n for n, b in blocks.items() if b[2] is None}
        )
        headers = {int(h["number"], 16): h for h in with_rpc_retries(self.rpc.get_blocks, wanted)}
        self._check_blooms(first, last, logs, headers)
        for number, header in headers.items():
            block_hash = header["hash"].lower()
            known = blocks.get(number)
            if known is not None and known[0] != block_hash:
                raise ChainMovedError(f"block {number}: logs from {known[0]}, header {block_hash}")
            blocks[number] = (block_hash, header["parentHash"].lower(), int(header["timestamp"], 16))
        self._check_links(first, last, blocks, window_start, parent_hash)
        events = [_with_timestamp(e, blocks) for e in events]
        events = self._attach_views(events)
        yield from _split(first, last, events, blocks)

    def _check_blooms(
        self, first: int, last: int, logs: list[dict[str, Any]], headers: dict[int, dict[str, Any]]
    ) -> None:
        """Every header read whose `logsBloom` names one of the contracts must have logs in the
        range's answer, or its own logs (by block hash) must confirm it has none (a bloom
        matches by chance too)."""
        with_logs = {int(entry["blockNumber"], 16) for entry in logs}
        for number, header in sorted(headers.items()):
            if not first <= number <= last or number in with_logs:
                continue
            bloom = bytes.fromhex(header.get("logsBloom", "0x")[2:])
            if not any(_bloom_has(bloom, bits) for bits in self._address_bits):
                continue
            try:
                own = with_rpc_retries(self.rpc.get_logs_at, self.addresses, header["hash"])
            except RpcError as exc:
                raise LogsIncompleteError(
                    f"block {number}'s bloom names our contracts, the range had no log of it, and "
                    f"its logs by hash failed: {exc}"
                ) from exc
            if own:
                raise LogsIncompleteError(
                    f"eth_getLogs {first}..{last} left out the {len(own)} logs of block {number}"
                )

    @staticmethod
    def _check_links(
        first: int,
        last: int,
        blocks: dict[int, tuple[str, str | None, int | None]],
        window_start: int,
        parent: str | None,
    ) -> None:
        """Headers inside the window must chain to each other and to the block before them."""
        start = max(first, window_start)
        previous = parent if start == first else blocks.get(start - 1, (None, None, None))[0]
        for number in range(start, last + 1):
            block_hash, parent_hash, _ = blocks[number]
            if previous is not None and parent_hash is not None and parent_hash != previous:
                raise ChainMovedError(f"block {number}'s parent is {parent_hash}, not {previous}")
            previous = block_hash

    def _attach_views(self, events: list[Event]) -> list[Event]:
        try:
            return attach_views(self.rpc, self.chain.manifest, events)
        except ViewAtBlockError as exc:
            # A block that vanished in a reorg cannot be read at its hash: start over.
            hashes = sorted({e.block_hash for e in events if view_for(e) is not None})
            numbers = sorted({e.block_number for e in events if view_for(e) is not None})
            canonical = {h["hash"].lower() for h in with_rpc_retries(self.rpc.get_blocks, numbers)}
            if not set(hashes) <= canonical:
                raise ChainMovedError(f"a block read for views left the chain: {exc}") from exc
            raise

    # --- writing ----------------------------------------------------------------------------

    def _apply(self, batch: Batch, head: int) -> None:
        window_start = head - self.settings.reorg_window + 1
        with self.engine.begin() as conn:
            cursor = self._cursor(conn, lock=True)
            if cursor is None or cursor.last_block != batch.first - 1:
                raise ChainMovedError(f"the cursor moved to {cursor and cursor.last_block} under this sync")
            undo_from = _undo_from(cursor.undo_from, batch, window_start)
            if (cursor.last_block, cursor.last_hash) != self._cache_at:
                self._forget()  # another process applied blocks since: cached rows may be stale
            store = self._store_for(conn, window_start)
            try:
                for event in batch.events:
                    handler = handler_for(event.contract, event.name)
                    if handler is not None:
                        store.block = event.block_number
                        handler(event, store)
                store.flush()
                _insert_events(conn, batch.events)
                _insert_blocks(conn, batch, window_start)
                conn.execute(
                    update(IndexerCursor.__table__)
                    .where(IndexerCursor.name == CURSOR)
                    .values(last_block=batch.last, last_hash=batch.last_hash, undo_from=undo_from)
                )
                # with the cursor: a reader that sees the new cursor sees the index fresh at it
                self._write_health(conn, halted=None)
            except BaseException:
                self._forget()
                raise
        self._cache_at = (batch.last, batch.last_hash)
        metrics.BLOCKS_APPLIED.inc(batch.last - batch.first + 1)
        metrics.EVENTS_APPLIED.inc(len(batch.events))

    def _store_for(self, conn: Connection, undo_from: int | None) -> Store:
        if self._store is None:
            self._store = Store(conn, undo_from)
        else:
            self._store.rebind(conn, undo_from)
        return self._store

    def _forget(self) -> None:
        self._cache_at = None
        if self._store is not None:
            self._store.forget()

    # --- reorgs -----------------------------------------------------------------------------

    def _check_reorg(self, cursor: IndexerCursor, report: SyncReport) -> IndexerCursor:
        """Rolls back to the fork point if the cursor's block is no longer canonical."""
        if cursor.last_hash is None or cursor.last_block < cursor.start_block:
            return cursor
        canonical = with_rpc_retries(self.rpc.get_blocks, [cursor.last_block])[0]["hash"].lower()
        if canonical == cursor.last_hash:
            return cursor
        fork = self._find_fork(cursor)
        if cursor.undo_from is None or fork < cursor.undo_from - 1:
            raise ReorgTooDeepError(
                f"block {cursor.last_block} changed and the fork point ({fork}) is below the blocks with "
                f"undo records (from {cursor.undo_from}); re-index into a new database or raise REORG_WINDOW"
            )
        with self.engine.begin() as conn:
            locked = self._cursor(conn, lock=True)
            if (
                locked is None
                or locked.last_block != cursor.last_block
                or locked.last_hash != cursor.last_hash
            ):
                raise ChainMovedError("the cursor moved while rolling back")
            restored = rollback_to(conn, fork)
            fork_hash = conn.execute(select(IndexedBlock.hash).where(IndexedBlock.number == fork)).scalar()
            conn.execute(delete(IndexedBlock.__table__).where(IndexedBlock.number > fork))
            conn.execute(delete(ChainEvent.__table__).where(ChainEvent.block_number > fork))
            undo_from = cursor.undo_from if cursor.undo_from <= fork else None
            conn.execute(
                update(IndexerCursor.__table__)
                .where(IndexerCursor.name == CURSOR)
                .values(last_block=fork, last_hash=fork_hash, undo_from=undo_from)
            )
        self._forget()
        log.warning(
            "reorg: rolled back blocks %d..%d (%d rows restored)", fork + 1, cursor.last_block, restored
        )
        report.rollbacks.append((cursor.last_block, fork))
        metrics.REORGS.inc()
        metrics.REORG_DEPTH.observe(cursor.last_block - fork)
        with self.engine.connect() as conn:
            updated = self._cursor(conn)
        assert updated is not None
        return updated

    def _find_fork(self, cursor: IndexerCursor) -> int:
        """The highest recorded block whose hash is still canonical (start_block - 1 if none)."""
        upper = cursor.last_block
        table = IndexedBlock.__table__
        while True:
            with self.engine.connect() as conn:
                stored = conn.execute(
                    select(table.c.number, table.c.hash)
                    .where(table.c.number <= upper)
                    .order_by(table.c.number.desc())
                    .limit(FORK_SEARCH_CHUNK)
                ).all()
            if not stored:
                return cursor.start_block - 1
            canonical = with_rpc_retries(self.rpc.get_blocks, [n for n, _ in stored])
            for (number, stored_hash), header in zip(stored, canonical, strict=True):
                if header["hash"].lower() == stored_hash:
                    return number
            upper = stored[-1][0] - 1

    # --- concurrency --------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """One sync at a time per database: a PostgreSQL advisory lock, or a file lock beside
        the SQLite file. Yields False (without waiting) when another sync holds it."""
        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            key = int.from_bytes(keccak(text="dimo-indexer")[:8], "big", signed=True)
            with self.engine.connect() as conn:
                acquired = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                conn.commit()
                try:
                    yield bool(acquired)
                finally:
                    if acquired:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
            return
        database = make_url(str(url)).database
        if not database or database == ":memory:":
            yield True
            return
        with open(Path(database).with_suffix(".indexer.lock"), "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _bloom_bits(item: bytes) -> list[tuple[int, int]]:
    """The three (byte index, bit mask) pairs `item` sets in a 2048-bit logs bloom (yellow
    paper §4.3.1: the low 11 bits of the first three byte pairs of keccak(item))."""
    digest = keccak(item)
    bits = []
    for i in (0, 2, 4):
        bit = ((digest[i] << 8) | digest[i + 1]) & 2047
        bits.append((255 - bit // 8, 1 << (bit % 8)))
    return bits


def _bloom_has(bloom: bytes, bits: list[tuple[int, int]]) -> bool:
    return len(bloom) == 256 and all(bloom[index] & mask for index, mask in bits)


def _undo_from(current: int | None, batch: Batch, window_start: int) -> int | None:
    """The first block of the unbroken run of blocks with undo records, after `batch`."""
    if batch.last < window_start:
        return None  # this batch has none: a fork below its end cannot be undone
    if batch.first >= window_start:
        return current if current is not None else batch.first
    return window_start


def _with_timestamp(event: Event, blocks: dict[int, tuple[str, str | None, int | None]]) -> Event:
    if event.block_timestamp is not None:
        return event
    from dataclasses import replace  # noqa: PLC0415

    return replace(event, block_timestamp=blocks[event.block_number][2])


def _split(
    first: int, last: int, events: list[Event], blocks: dict[int, tuple[str, str | None, int | None]]
) -> Iterator[Batch]:
    """Cuts [first, last] into batches of about EVENTS_PER_TRANSACTION events, at block ends."""
    start = 0
    batch_first = first
    while start < len(events) and len(events) - start > EVENTS_PER_TRANSACTION:
        end = start + EVENTS_PER_TRANSACTION
        cut_block = events[end - 1].block_number
        while end < len(events) and events[end].block_number == cut_block:
            end += 1
        if end >= len(events):
            break
        chunk_blocks = {n: b for n, b in blocks.items() if batch_first <= n <= cut_block}
        yield Batch(batch_first, cut_block, blocks[cut_block][0], events[start:end], chunk_blocks)
        start = end
        batch_first = cut_block + 1
    chunk_blocks = {n: b for n, b in blocks.items() if batch_first <= n <= last}
    yield Batch(batch_first, last, blocks[last][0], events[start:], chunk_blocks)


def _insert_events(conn: Connection, events: list[Event]) -> None:
    if not events:
        return
    rows = [
        {
            "block_number": e.block_number,
            "log_index": e.log_index,
            "tx_hash": e.tx_hash,
            "block_timestamp": e.block_timestamp,
            "contract": e.contract,
            "address": e.address,
            "name": e.name,
            "args": json.dumps(e.args, separators=(",", ":")),
        }
        for e in events
    ]
    conn.execute(insert(ChainEvent.__table__), rows)


def _insert_blocks(conn: Connection, batch: Batch, window_start: int) -> None:
    rows = [
        {"number": n, "hash": h, "parent_hash": p, "timestamp": t}
        for n, (h, p, t) in sorted(batch.blocks.items())
        if batch.first <= n <= batch.last
    ]
    if rows:
        conn.execute(insert(IndexedBlock.__table__), rows)
