"""Closing periods into the accounting, and one cumulative root at a time on chain
(DESIGN.md §4, SPEC15 §4 and §7).

`close_periods` closes a product's ended periods by the share rule (`shares.py`), a batch of
periods in one database transaction: each account's total owed, the period's audit row and
the product's cursor (next period, carry, cumulative taken) commit together or not at all, so each period is
closed exactly once whatever the retries. A period closes only once the chain's confirmed time
and the indexer (orders, refunds, memberships) have both passed its end.

`build_root` turns the accounting into a root: every account's cumulative amount owed as an
`(account, cumulative)` leaf, the per-product cumulative takes, the hash of the tree's dump;
the root and every leaf's proof are stored before anything is sent. `advance` moves the one
root in flight through the chain: proposeRoot (after checking each take against
`vestedMemberAmount` at a confirmed block), then acceptRoot once it is claimable. Every step
leaves a record, so a crashed or repeated task resumes from it; a reverted, dropped, revoked
or replaced proposal changes nothing in the accounting, and the next root (cumulative)
includes everything it held.

Root states: computed → proposing → proposed → accepting → accepted; failed, revoked,
replaced end a root.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils import keccak
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from workers.chain.outbox import TxRevertError, TxSender
from workers.chain.rpc import with_rpc_retries
from workers.chain.views import Chain
from workers.config import Settings
from workers.db import for_update, upsert
from workers.db.indexing import IndexerHealth
from workers.db.projections import Order, ProductTaken
from workers.db.settlement import (
    ChainTx,
    SettlementAccount,
    SettlementPeriod,
    SettlementProduct,
    SettlementRoot,
    SettlementRootLeaf,
)
from workers.faults import fault_point
from workers.ledger.periods import members_by_version, order_periods, overlaps, served_units, vesting_of
from workers.ledger.shares import split_period
from workers.merkle import ClaimTree

log = logging.getLogger(__name__)

#: A root in one of these states is in flight: no other root is built meanwhile.
IN_FLIGHT = ("computed", "proposing", "proposed", "accepting")
#: Rows per bulk statement (accounts' totals, leaves).
_INSERT_CHUNK = 5_000
#: Serialises what changes or reads accounts' totals with the products' takes.
ACCOUNTS_LOCK = "settlement:accounts"
_ZERO_ROOT = b"\0" * 32


class SettlementError(RuntimeError):
    """The settlement cannot do what was asked (the message says why)."""


class NotYetError(SettlementError):
    """Not now, later: nothing ended yet, or the root is not claimable yet."""


@dataclass(frozen=True)
class ClosedView:
    """What closing a product's periods did."""

    product_id: int
    next_period: int
    periods: int
    paid: int
    carry: int
    taken: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RootView:
    """What a task reports about a root."""

    id: int
    root: str
    status: str
    total: int
    leaves: int
    product_ids: list[int]
    cumulative_taken: list[int]
    claimable_at: int | None
    tx_hash: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _view(row: SettlementRoot, tx: ChainTx | None = None) -> RootView:
    return RootView(
        id=row.id,
        root=row.root,
        status=row.status,
        total=row.total,
        leaves=row.leaf_count,
        product_ids=json.loads(row.product_ids),
        cumulative_taken=[int(x) for x in json.loads(row.cumulative_taken)],
        claimable_at=row.claimable_at,
        tx_hash=tx.tx_hash if tx else None,
        error=row.error,
    )


def lock(session: Session, name: str) -> None:
    """Holds the named lock until `session`'s transaction ends (PostgreSQL: an advisory lock;
    SQLite: its writing transaction already holds the database)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(keccak(text=name)[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def root_file(tree: ClaimTree) -> bytes:
    """The off-chain file of a root: its StandardMerkleTree dump, compact JSON; its keccak256
    is the root's dataHash (anyone can rebuild the tree from it)."""
    return json.dumps(tree.dump(), separators=(",", ":"), sort_keys=True).encode()


class Settlement:
    """Settlement of members' vested revenue for one chain, database and settler key."""

    def __init__(self, chain: Chain, engine: Engine, settings: Settings) -> None:
        self.settings = settings
        self.chain = chain
        self.engine = engine
        self.sender = TxSender(chain, self.settings.settler_key.get_secret_value(), self.settings)
        self.market = chain.contract("Marketplace")

    def _session(self) -> Session:
        return Session(bind=self.engine, expire_on_commit=False)

    # --- time -------------------------------------------------------------------------------

    def confirmed_block(self) -> int:
        head = with_rpc_retries(self.chain.rpc.block_number)
        return max(head - self.settings.confirmations, 0)

    def chain_time(self, block: int | None = None) -> int:
        number = self.confirmed_block() if block is None else block
        return int(with_rpc_retries(self.chain.rpc.get_block, number)["timestamp"], 16)

    def closable_until(self, session: Session) -> int:
        """Periods ending at or before this moment may close: the confirmed chain time, and
        no later than the last block the indexer applied (its orders, refunds, members), less
        SETTLEMENT_GRACE_SECONDS for usage still being committed."""
        indexed = session.scalar(
            select(func.max(IndexerHealth.indexed_timestamp)).where(IndexerHealth.halted.is_(None))
        )
        return max(min(self.chain_time(), int(indexed or 0)) - self.settings.settlement_grace_seconds, 0)

    # --- closing periods --------------------------------------------------------------------

    def products_to_close(self) -> list[int]:
        """Products with a vesting order and an ended period not closed yet."""
        with self._session() as session:
            until = self.closable_until(session)
            last_ended = until // self.settings.epoch_seconds  # periods < last_ended have ended
            rows = session.execute(select(SettlementProduct.product_id, SettlementProduct.next_period)).all()
            cursors = {int(p): int(n) for p, n in rows}
            starts = session.execute(
                select(Order.product_id, func.min(Order.vest_starts_at))
                .where(Order.member_share.is_not(None), Order.vest_starts_at > 0)
                .group_by(Order.product_id)
            ).all()
        seconds = self.settings.epoch_seconds
        return sorted(
            int(p) for p, start in starts if cursors.get(int(p), int(start) // seconds) < last_ended
        )

    def close_periods(self, product_id: int) -> ClosedView:
        """Closes `product_id`'s ended periods from its cursor on, at most
        SETTLEMENT_BATCH_PERIODS of them, in one database transaction."""
        period_seconds = self.settings.epoch_seconds
        with self._session() as session, session.begin():
            until = self.closable_until(session) // period_seconds
            orders = session.scalars(
                select(Order).where(Order.product_id == product_id, Order.member_share.is_not(None))
            ).all()
            first_period = self._first_period(orders)
            if first_period is None:
                return ClosedView(product_id, 0, 0, 0, 0, 0)
            session.execute(
                upsert(session, SettlementProduct),
                {"product_id": product_id, "next_period": first_period, "carry": 0, "taken": 0},
            )
            cursor = session.scalars(
                for_update(select(SettlementProduct).where(SettlementProduct.product_id == product_id))
            ).one()
            first = int(cursor.next_period)
            last = min(until, first + self.settings.settlement_batch_periods)
            if last <= first:
                return ClosedView(product_id, first, 0, 0, int(cursor.carry), int(cursor.taken))
            served = served_units(session, product_id, first, last)
            members = members_by_version(session, product_id)
            window_start, window_end = first * period_seconds, last * period_seconds
            orders = [o for o in orders if overlaps(vesting_of(o), window_start, window_end)]
            carry, paid_total, periods = int(cursor.carry), 0, 0
            owed: dict[str, int] = defaultdict(int)
            for period in range(first, last):
                pieces = order_periods(orders, served.get(period, {}), members, period, period_seconds)
                if not pieces:
                    continue  # nothing released: the carry waits for the next release
                shares = split_period(pieces, carry)
                session.add(
                    SettlementPeriod(
                        product_id=product_id,
                        period=period,
                        released=shares.released,
                        carry_in=carry,
                        paid=shares.paid,
                        carry_out=shares.carry_out,
                        orders=len(pieces),
                        accounts=len(shares.payouts),
                    )
                )
                for account, amount in shares.payouts.items():
                    owed[account] += amount
                carry, paid_total, periods = shares.carry_out, paid_total + shares.paid, periods + 1
            self._credit(session, owed)
            cursor.next_period, cursor.carry = last, carry
            cursor.taken = int(cursor.taken) + paid_total
            fault_point("settlement.close:before_commit")
            session.flush()
            log.info("product %s: periods %s..%s closed, %s paid, %s carried", product_id, first, last - 1,
                     paid_total, carry)  # fmt: skip
            return ClosedView(product_id, last, periods, paid_total, carry, int(cursor.taken))

    @staticmethod
    def _credit(session: Session, owed: dict[str, int]) -> None:
        """Adds a batch's shares to each account's total owed: one read and one upsert per
        chunk of accounts, under the accounts lock (a root reads totals and takes under it)."""
        if not owed:
            return
        lock(session, ACCOUNTS_LOCK)
        accounts = sorted(owed)
        current: dict[str, int] = {}
        for start in range(0, len(accounts), _INSERT_CHUNK):
            chunk = accounts[start : start + _INSERT_CHUNK]
            query = select(SettlementAccount.account, SettlementAccount.owed).where(
                SettlementAccount.account.in_(chunk)
            )
            current.update((a, int(x)) for a, x in session.execute(query))
        now = datetime.now(UTC)
        rows = [{"account": a, "owed": current.get(a, 0) + owed[a], "updated_at": now} for a in accounts]
        statement = upsert(session, SettlementAccount, update=("owed", "updated_at"))
        for start in range(0, len(rows), _INSERT_CHUNK):
            session.execute(statement, rows[start : start + _INSERT_CHUNK])

    def _first_period(self, orders: Any) -> int | None:
        """The period the product's first release falls in (None: nothing vests yet)."""
        starts = [int(o.vest_starts_at) for o in orders if o.vest_starts_at]
        return min(starts) // self.settings.epoch_seconds if starts else None

    # --- roots ------------------------------------------------------------------------------

    def in_flight(self) -> RootView | None:
        with self._session() as session:
            row = session.scalars(
                select(SettlementRoot).where(SettlementRoot.status.in_(IN_FLIGHT)).order_by(SettlementRoot.id)
            ).first()
            return None if row is None else _view(row)

    def build_root(self) -> RootView | None:
        """Stores a new root over everything owed, with every leaf's proof, unless a root is
        in flight (that one is returned) or nothing changed since the last accepted root and
        since the last one that ended without being accepted (None)."""
        with self._session() as session, session.begin():
            lock(session, ACCOUNTS_LOCK)  # one builder at a time, totals and takes consistent
            current = session.scalars(
                select(SettlementRoot).where(SettlementRoot.status.in_(IN_FLIGHT)).order_by(SettlementRoot.id)
            ).first()
            if current is not None:
                return _view(current)
            totals = session.execute(select(SettlementAccount.account, SettlementAccount.owed))
            leaves = sorted((account, int(owed)) for account, owed in totals if int(owed) > 0)
            total = sum(amount for _, amount in leaves)
            last = session.scalars(select(SettlementRoot).order_by(SettlementRoot.id.desc())).first()
            if not leaves or (last is not None and last.total == total):
                return None  # nothing new since the last root, accepted or not
            taken = {
                int(p): int(t)
                for p, t in session.execute(select(SettlementProduct.product_id, SettlementProduct.taken))
            }
            on_chain = {
                int(p): int(t)
                for p, t in session.execute(select(ProductTaken.product_id, ProductTaken.taken))
            }
            product_ids = sorted(p for p, t in taken.items() if t != on_chain.get(p, 0))
            tree = ClaimTree.build(leaves)
            data_hash = "0x" + keccak(root_file(tree)).hex()
            row = SettlementRoot(
                root=tree.root,
                status="computed",
                total=total,
                leaf_count=len(leaves),
                product_ids=json.dumps(product_ids),
                cumulative_taken=json.dumps([str(taken[p]) for p in product_ids]),
                data_hash=data_hash,
            )
            session.add(row)
            session.flush()
            rows = [
                {
                    "root_id": row.id,
                    "account": account,
                    "cumulative": amount,
                    "proof": json.dumps(tree.proof(i)),
                }
                for i, (account, amount) in enumerate(leaves)
            ]
            for start in range(0, len(rows), _INSERT_CHUNK):
                session.execute(insert(SettlementRootLeaf), rows[start : start + _INSERT_CHUNK])
            log.info("root %s computed: %s owed to %s accounts, takes %s of products %s", row.root, total,
                     len(leaves), [taken[p] for p in product_ids], product_ids)  # fmt: skip
            return _view(row)

    def _locked_root(self, session: Session, root_id: int) -> SettlementRoot:
        return session.scalars(for_update(select(SettlementRoot).where(SettlementRoot.id == root_id))).one()

    def _takes(self, row: SettlementRoot) -> tuple[list[int], list[int]]:
        return json.loads(row.product_ids), [int(x) for x in json.loads(row.cumulative_taken)]

    def _check_vested(self, row: SettlementRoot) -> str | None:
        """Why the chain's vested pools cannot cover the root's takes at a confirmed block."""
        block = self.confirmed_block()
        for product_id, take in zip(*self._takes(row), strict=True):
            vested = self.market.functions.vestedMemberAmount(product_id).call(block_identifier=block)
            if take > vested:
                return f"product {product_id}: take {take} above vestedMemberAmount {vested} at block {block}"
        return None

    def advance(self, root_id: int) -> RootView:
        """Moves the root one or more steps along: propose, confirm, accept when claimable."""
        view = self._step(root_id)
        while view.status in ("proposing", "accepting"):
            view = self._send(root_id)
        return view

    def _step(self, root_id: int) -> RootView:
        """Records the next transaction the root needs (or finds the chain moved on)."""
        with self._session() as session, session.begin():
            row = self._locked_root(session, root_id)
            if row.status == "computed":
                self._record_propose(session, row)
            elif row.status == "proposed":
                self._record_accept(session, row)
            tx_id = row.propose_tx_id if row.status == "proposing" else row.accept_tx_id
            return _view(row, session.get(ChainTx, tx_id) if tx_id else None)

    def _record_propose(self, session: Session, row: SettlementRoot) -> None:
        problem = self._check_vested(row)
        if problem is not None:
            row.status, row.error = "failed", f"not proposed: {problem}"
            log.error("root %s: %s", row.root, row.error)
            return
        product_ids, takes = self._takes(row)
        data = self.market.encode_abi("proposeRoot", [row.root, product_ids, takes, row.data_hash])
        try:
            tx = self.sender.record(session, f"proposeRoot:{row.id}", self.market.address, data)
        except TxRevertError as exc:
            row.status, row.error = "failed", f"the chain would refuse this root: {exc.reason}"
            log.error("root %s: %s", row.root, row.error)
            return
        row.propose_tx_id, row.status = tx.id, "proposing"

    def _record_accept(self, session: Session, row: SettlementRoot) -> None:
        pending, claimable_at, _takes_hash = self.market.functions.pendingRoot().call()
        if pending != bytes.fromhex(row.root[2:]):
            self._moved_on(row)
            return
        if self.chain_time(with_rpc_retries(self.chain.rpc.block_number)) < claimable_at:
            row.claimable_at = int(claimable_at)
            return
        product_ids, takes = self._takes(row)
        data = self.market.encode_abi("acceptRoot", [product_ids, takes])
        try:
            tx = self.sender.record(session, f"acceptRoot:{row.id}", self.market.address, data)
        except TxRevertError as exc:
            row.status, row.error = "failed", f"the chain would refuse to accept this root: {exc.reason}"
            log.error("root %s: %s", row.root, row.error)
            return
        row.accept_tx_id, row.status = tx.id, "accepting"

    def _moved_on(self, row: SettlementRoot) -> None:
        """The chain's pending root is no longer ours: accepted by someone, revoked or replaced."""
        current = self.market.functions.root().call()
        pending = self.market.functions.pendingRoot().call()[0]
        if current == bytes.fromhex(row.root[2:]):
            row.status, row.error = "accepted", None
        elif pending == _ZERO_ROOT:
            row.status, row.error = "revoked", "revoked while pending (or never pending)"
        else:
            row.status, row.error = "replaced", f"pending root is now 0x{pending.hex()}"
        log.warning("root %s is %s", row.root, row.status)

    def _send(self, root_id: int) -> RootView:
        """Sends the root's recorded transaction (again: the same bytes are harmless), waits
        for it (replacing it if it is stuck) and records the outcome."""
        with self._session() as session:
            row = session.get(SettlementRoot, root_id)
            assert row is not None
            stage = "propose" if row.status == "proposing" else "accept"
            tx = session.get(ChainTx, row.propose_tx_id if stage == "propose" else row.accept_tx_id)
            assert tx is not None
        fault_point(f"settlement.{stage}:before_send")
        if tx.status in ("signed", "sent"):
            self.sender.send_recorded(self.engine, tx)
        fault_point(f"settlement.{stage}:after_send")
        receipt = self.sender.wait_receipt(tx, engine=self.engine)
        fault_point(f"settlement.{stage}:after_receipt")
        return self._finish(root_id, stage, tx, receipt)

    def _finish(self, root_id: int, stage: str, tx: ChainTx, receipt: dict[str, Any] | None) -> RootView:
        with self._session() as session, session.begin():
            row = self._locked_root(session, root_id)
            stored = session.get(ChainTx, tx.id)
            assert stored is not None
            if row.status not in ("proposing", "accepting"):
                return _view(row, stored)  # another worker finished it
            if receipt is None:
                # Our nonce went to another transaction: this one can never be mined.
                stored.status, stored.error = "dropped", "its nonce was used by another transaction"
                row.status = "computed" if stage == "propose" else "proposed"
                log.warning("%s tx %s of root %s dropped; a new one will be recorded", stage, tx.tx_hash,
                            row.root)  # fmt: skip
                return _view(row, stored)
            block = int(receipt["blockNumber"], 16)
            stored.block_number, stored.tx_hash = block, receipt["transactionHash"]
            if int(receipt["status"], 16) != 1:
                stored.status = "reverted"
                if stage == "propose":
                    row.status, row.error = "failed", f"proposeRoot reverted in block {block}"
                else:
                    row.status = "proposed"  # someone may have accepted it first: look again
                    self._record_accept(session, row)
                return _view(row, stored)
            stored.status = "mined"
            if stage == "propose":
                _root, claimable_at, _hash = self.market.functions.pendingRoot().call(block_identifier=block)
                row.status, row.claimable_at, row.error = "proposed", int(claimable_at), None
            else:
                row.status, row.error = "accepted", None
            return _view(row, stored)

    # --- the sweep ---------------------------------------------------------------------------

    def settle(self) -> RootView | None:
        """The root step of a sweep: advances the root in flight, or builds and proposes a new
        one when the accounting moved. NotYetError while the root in flight is not claimable."""
        view = self.in_flight() or self.build_root()
        if view is None:
            return None
        view = self.advance(view.id)
        if view.status == "proposed":
            raise NotYetError(f"root {view.root} is claimable at {view.claimable_at}")
        return view
