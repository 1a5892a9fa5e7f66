"""access.sweep: expires orders and credits.

Credits of ended orders (credits expire: an Api order ends `validitySeconds` after its
purchase) and of refunded orders are zeroed (one UPDATE). Every ended order still in force on chain
gets `Marketplace.expireOrder(orderId)` (permissionless), which releases its units from the
buyer's Staking usage so the lockup curve follows consumption. Transactions go through the
workers' recorded-nonce sender: a crashed or repeated sweep re-sends the same transaction
rather than a second one. Each run handles a bounded number of orders."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from workers.chain.outbox import TxRevertError, TxSender
from workers.chain.views import Chain
from workers.db.gateway import ApiCredit, OrderExpiry, SiweNonce
from workers.db.projections import Order
from workers.db.session import Database
from workers.db.settlement import ChainTx

log = logging.getLogger(__name__)

#: Orders dealt with per sweep run (the rest wait for the next run).
BATCH = 100
#: Seconds an expired sign-in nonce is kept (replays of it stay answerable as `replayed`
#: only while the row exists; after that they are unknown nonces, refused all the same).
NONCE_RETENTION = 86_400


@dataclass
class SweepReport:
    credits_expired: int = 0
    nonces_forgotten: int = 0
    orders_expired: list[int] | None = None
    orders_not_in_force: list[int] | None = None
    orders_waiting: list[int] | None = None


def expire_credits(session: Session, now: int) -> int:
    """Zeroes the counters of orders that ended or were refunded at or before `now`; how many."""
    refunded = select(Order.order_id).where(Order.refunded_at.is_not(None), Order.refunded_at <= now)
    ended = and_(ApiCredit.expires_at > 0, ApiCredit.expires_at <= now)
    result = session.execute(
        update(ApiCredit)
        .where(ApiCredit.expired.is_(False), or_(ended, ApiCredit.order_id.in_(refunded)))
        .values(expired=True, remaining=0)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def forget_nonces(session: Session, now: int) -> int:
    """Deletes sign-in nonces that expired more than NONCE_RETENTION seconds ago."""
    result = session.execute(
        delete(SiweNonce)
        .where(SiweNonce.expires_at < now - NONCE_RETENTION)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def ended_orders(session: Session, now: int, limit: int = BATCH) -> list[int]:
    """Orders (as indexed) that ended at or before `now` and that no sweep has dealt with."""
    handled = select(OrderExpiry.order_id)
    rows = session.scalars(
        select(Order.order_id)
        .where(Order.ends_at <= now, Order.order_id.not_in(handled))
        .order_by(Order.ends_at, Order.order_id)
        .limit(limit)
    )
    return [int(r) for r in rows]


def _mark(db: Database, order_id: int, status: str, tx_hash: str | None = None) -> None:
    with db.session() as session:
        session.merge(
            OrderExpiry(order_id=order_id, status=status, tx_hash=tx_hash, handled_at=int(time.time()))
        )


def _expire_on_chain(db: Database, chain: Chain, sender: TxSender, order_id: int) -> str | None:
    """Sends (or re-sends) expireOrder for one order; the mined tx hash, None if not mined."""
    marketplace = chain.contract("Marketplace")
    purpose = f"expireOrder:{order_id}"
    with db.session() as session:
        tx = session.scalars(
            select(ChainTx).where(ChainTx.purpose == purpose, ChainTx.status.in_(("signed", "sent", "mined")))
        ).first()
        if tx is None:
            data = marketplace.encode_abi("expireOrder", args=[order_id])
            tx = sender.record(session, purpose, marketplace.address, data)
        session.expunge(tx)
    sender.broadcast(tx)
    receipt = sender.wait_receipt(tx)
    status = "mined" if receipt is not None and int(receipt["status"], 16) == 1 else "reverted"
    if receipt is None:
        status = "dropped"
    with db.session() as session:
        session.execute(update(ChainTx).where(ChainTx.id == tx.id).values(status=status))
    return tx.tx_hash if status == "mined" else None


def sweep(db: Database, chain: Chain, sender: TxSender, limit: int = BATCH) -> SweepReport:
    """One run: credits, then ended orders (by the chain's clock, which expireOrder checks)."""
    latest = chain.w3.eth.get_block("latest")
    now = max(int(latest["timestamp"]), 0)
    report = SweepReport(orders_expired=[], orders_not_in_force=[], orders_waiting=[])
    with db.session() as session:
        report.credits_expired = expire_credits(session, now)
        report.nonces_forgotten = forget_nonces(session, int(time.time()))
        candidates = ended_orders(session, now, limit)
    marketplace = chain.contract("Marketplace")
    for order_id in candidates:
        if not marketplace.functions.inForce(order_id).call(block_identifier="latest"):
            _mark(db, order_id, "not_in_force")
            report.orders_not_in_force.append(order_id)  # type: ignore[union-attr]
            continue
        try:
            tx_hash = _expire_on_chain(db, chain, sender, order_id)
        except TxRevertError as exc:
            log.warning("expireOrder(%d) would revert (%s); next sweep tries again", order_id, exc.reason)
            report.orders_waiting.append(order_id)  # type: ignore[union-attr]
            continue
        if tx_hash is None:
            report.orders_waiting.append(order_id)  # type: ignore[union-attr]
            continue
        _mark(db, order_id, "expired", tx_hash)
        report.orders_expired.append(order_id)  # type: ignore[union-attr]
    log.info(
        "access.sweep: %d credit counters expired, orders expired %s, not in force %s, waiting %s",
        report.credits_expired,
        report.orders_expired,
        report.orders_not_in_force,
        report.orders_waiting,
    )
    return report
