"""Closing and settling epochs, exactly once (DESIGN.md §4).

`close_epoch` computes an ended epoch's shares from the usage rows committed for it, builds
the Merkle tree and stores the epoch with its root and every leaf's proof — before anything
is sent. `submit` records `Marketplace.settle` as a signed transaction with its nonce, then
sends it and waits for its receipt. Every step leaves a record, so a crashed, retried or
duplicated task resumes from the record: the same signed bytes are re-sent (the chain takes
them once), a mined transaction is recognised by its hash, and a settlement the chain would
refuse (simulated first) is marked failed instead of sent.

States of an epoch: computed → submitting → settled; empty (nothing to pay); failed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from workers.chain.outbox import TxRevertError, TxSender
from workers.chain.rpc import with_rpc_retries
from workers.chain.views import Chain
from workers.config import Settings
from workers.db import for_update
from workers.db.settlement import ChainTx, SettlementEpoch, SettlementLeaf
from workers.faults import fault_point
from workers.ledger import epoch_of, latest_untaken_epochs, take_usage
from workers.merkle import PayoutTree
from workers.settlement.shares import compute_shares

log = logging.getLogger(__name__)

PENDING = ("computed", "submitting")
DONE = ("settled", "empty", "failed")


class SettlementError(RuntimeError):
    """An epoch cannot be closed or settled as asked (the message says why)."""


class NotYetError(SettlementError):
    """Not now, later: the epoch has not ended, or an earlier one is still settling."""


@dataclass(frozen=True)
class EpochView:
    """What a task reports about an epoch."""

    product_id: int
    epoch: int
    status: str
    amount: int
    pool: int
    remainder: int
    leaves: int
    root: str | None
    tx_hash: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _view(row: SettlementEpoch, tx: ChainTx | None = None) -> EpochView:
    return EpochView(
        product_id=row.product_id,
        epoch=row.epoch,
        status=row.status,
        amount=row.amount,
        pool=row.pool,
        remainder=row.remainder,
        leaves=row.leaf_count,
        root=row.root,
        tx_hash=tx.tx_hash if tx else None,
        error=row.error,
    )


class Settlement:
    """Settlement of member pools for one chain, database and settler key."""

    def __init__(self, chain: Chain, engine: Engine, settings: Settings) -> None:
        self.settings = settings
        self.chain = chain
        self.engine = engine
        self.sender = TxSender(chain, self.settings.settler_key.get_secret_value(), self.settings)
        self.market = chain.contract("Marketplace")

    def _session(self) -> Session:
        return Session(bind=self.engine, expire_on_commit=False)

    @staticmethod
    def _locked(session: Session, product_id: int, epoch: int) -> SettlementEpoch | None:
        query = select(SettlementEpoch).where(
            SettlementEpoch.product_id == product_id, SettlementEpoch.epoch == epoch
        )
        return session.scalars(for_update(query)).first()

    # --- closing ----------------------------------------------------------------------------

    def chain_time(self) -> int:
        head = with_rpc_retries(self.chain.rpc.get_block, with_rpc_retries(self.chain.rpc.block_number))
        return int(head["timestamp"], 16)

    def close_epoch(self, product_id: int, epoch: int) -> EpochView:
        """Computes and stores epoch `epoch` of `product_id` once; later calls return the record."""
        now = max(int(time.time()), self.chain_time())
        ends = (epoch + 1) * self.settings.epoch_seconds
        if now < ends:
            raise NotYetError(f"epoch {epoch} of product {product_id} runs until {ends} (now {now})")
        confirmed = with_rpc_retries(self.chain.rpc.block_number) - self.settings.confirmations
        with self._session() as session, session.begin():
            existing = self._locked(session, product_id, epoch)
            if existing is not None:
                return _view(existing)
            self._check_order(session, product_id, epoch, confirmed)
            pool = self._pool_at(product_id, confirmed)
            contributions = take_usage(session, product_id, epoch)
            shares = compute_shares(pool, contributions)
            row = SettlementEpoch(
                product_id=product_id,
                epoch=epoch,
                status="computed" if shares.leaves else "empty",
                pool=pool,
                pool_block=confirmed,
                amount=shares.amount,
                remainder=shares.remainder,
                total_units=shares.total_units,
                usage_rows=len(contributions),
                leaf_count=len(shares.leaves),
                root=None,
            )
            if shares.leaves:
                tree = PayoutTree.build(shares.leaves)
                row.root = tree.root
                session.add_all(
                    SettlementLeaf(
                        product_id=product_id,
                        epoch=epoch,
                        index=index,
                        account=account,
                        amount=amount,
                        proof=json.dumps(tree.proof(i)),
                    )
                    for i, (index, account, amount) in enumerate(shares.leaves)
                )
            session.add(row)
            session.flush()
            log.info(
                "closed epoch %s of product %s: %s over %s leaves (pool %s, %s carried)",
                epoch, product_id, row.amount, row.leaf_count, pool, row.remainder,
            )  # fmt: skip
            return _view(row)

    def _check_order(self, session: Session, product_id: int, epoch: int, confirmed: int) -> None:
        """Epochs settle in increasing order, each after the last one is confirmed."""
        later = session.scalar(
            select(SettlementEpoch.epoch).where(
                SettlementEpoch.product_id == product_id,
                SettlementEpoch.epoch > epoch,
                SettlementEpoch.status.in_((*PENDING, "settled")),
            )
        )
        if later is not None:
            raise SettlementError(
                f"product {product_id} already has epoch {later} closed: epoch {epoch} can no longer settle "
                "(Marketplace.settle takes increasing epochs)"
            )
        last = self.market.functions.lastEpoch(product_id).call(block_identifier=confirmed)
        if last >= epoch:
            raise SettlementError(f"product {product_id} settled epoch {last} on chain: {epoch} is too late")
        earlier = session.scalars(
            select(SettlementEpoch).where(
                SettlementEpoch.product_id == product_id,
                SettlementEpoch.epoch < epoch,
                SettlementEpoch.status.in_((*PENDING, "settled")),
            )
        ).all()
        for row in earlier:
            if row.status in PENDING or (row.settled_block or 0) > confirmed:
                raise NotYetError(
                    f"epoch {row.epoch} of product {product_id} is {row.status} and not yet confirmed: "
                    f"epoch {epoch} waits for it (its pool depends on it)"
                )

    def _pool_at(self, product_id: int, block: int) -> int:
        return int(self.market.functions.memberPool(product_id).call(block_identifier=block))

    # --- submitting --------------------------------------------------------------------------

    def submit(self, product_id: int, epoch: int) -> EpochView:
        """Settles a computed epoch on chain, resuming from whatever the record says."""
        tx = self._record_tx(product_id, epoch)
        if tx is None:
            with self._session() as session:
                row = session.get(SettlementEpoch, (product_id, epoch))
                if row is None:
                    raise SettlementError(f"epoch {epoch} of product {product_id} was never closed")
                return _view(row, session.get(ChainTx, row.tx_id) if row.tx_id else None)
        fault_point("settlement.submit:before_send")
        if tx.status == "signed":
            self.sender.broadcast(tx)
            self._set_tx(tx, status="sent")
        elif tx.status == "sent":
            self.sender.broadcast(tx)  # the node may have lost it; the same bytes are harmless
        fault_point("settlement.submit:after_send")
        receipt = self.sender.wait_receipt(tx)
        fault_point("settlement.submit:after_receipt")
        return self._finish(product_id, epoch, tx, receipt)

    def _record_tx(self, product_id: int, epoch: int) -> ChainTx | None:
        """The epoch's transaction, signed and stored (with its nonce) if it had none; None when
        the epoch needs no transaction (empty, settled, failed)."""
        with self._session() as session, session.begin():
            row = self._locked(session, product_id, epoch)
            if row is None or row.status in DONE:
                return None
            if row.tx_id is not None:
                tx = session.get(ChainTx, row.tx_id)
                if tx is not None and tx.status in ("signed", "sent"):
                    return tx
            if self._settled_on_chain(row):
                return None
            data = self.market.encode_abi("settle", [product_id, epoch, row.amount, row.root])
            try:
                tx = self.sender.record(session, f"settle:{product_id}:{epoch}", self.market.address, data)
            except TxRevertError as exc:
                row.status, row.error = "failed", f"the chain would refuse this settlement: {exc.reason}"
                log.error("epoch %s of product %s: %s", epoch, product_id, row.error)
                return None
            row.tx_id, row.status = tx.id, "submitting"
            return tx

    def _settled_on_chain(self, row: SettlementEpoch) -> bool:
        """Marks the epoch settled if the chain already has it (with our root); refuses if the
        chain has another root for it."""
        root, amount, _claimed = self.market.functions.epochOf(row.product_id, row.epoch).call()
        if root == b"\0" * 32:
            return False
        if "0x" + root.hex() != row.root or amount != row.amount:
            row.status = "failed"
            row.error = f"the chain settled this epoch with another root 0x{root.hex()} ({amount})"
        else:
            row.status = "settled"
        return True

    def _set_tx(self, tx: ChainTx, **values: Any) -> None:
        with self._session() as session, session.begin():
            session.execute(update(ChainTx).where(ChainTx.id == tx.id).values(**values))
        for key, value in values.items():
            setattr(tx, key, value)

    def _finish(self, product_id: int, epoch: int, tx: ChainTx, receipt: dict[str, Any] | None) -> EpochView:
        with self._session() as session, session.begin():
            row = self._locked(session, product_id, epoch)
            stored = session.get(ChainTx, tx.id)
            assert row is not None and stored is not None
            if receipt is None:
                # Our nonce went to another transaction: this one can never be mined.
                stored.status, stored.error = "dropped", "its nonce was used by another transaction"
                row.tx_id, row.status = None, "computed"
                log.warning("settle tx %s of epoch %s/%s dropped; a new one will be recorded", tx.tx_hash,
                            product_id, epoch)  # fmt: skip
                return _view(row, stored)
            block = int(receipt["blockNumber"], 16)
            if int(receipt["status"], 16) == 1:
                stored.status, stored.block_number = "mined", block
                row.status, row.settled_block, row.error = "settled", block, None
            else:
                stored.status, stored.block_number = "reverted", block
                row.status, row.error = (
                    "failed",
                    f"settle reverted on chain in block {block} (tx {tx.tx_hash})",
                )
            return _view(row, stored)

    # --- the sweep ---------------------------------------------------------------------------

    def pending_work(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(epochs to close, epochs to submit). An ended epoch with usage not yet included is
        closed; usage that arrived after its epoch was closed goes into the product's next
        ended epoch."""
        current = epoch_of(max(int(time.time()), self.chain_time()), self.settings.epoch_seconds)
        with self._session() as session:
            ended = latest_untaken_epochs(session, current)
            closed = dict(
                session.execute(
                    select(SettlementEpoch.product_id, func.max(SettlementEpoch.epoch)).group_by(
                        SettlementEpoch.product_id
                    )
                ).all()
            )
            to_submit = session.execute(
                select(SettlementEpoch.product_id, SettlementEpoch.epoch).where(
                    SettlementEpoch.status.in_(PENDING)
                )
            ).all()
        to_close = []
        for product_id, latest in ended.items():
            target = max(latest, int(closed.get(product_id, -1)) + 1)
            if target < current:
                to_close.append((product_id, target))
        return sorted(to_close), sorted((int(p), int(e)) for p, e in to_submit)
