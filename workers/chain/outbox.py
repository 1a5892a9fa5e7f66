"""The workers' outgoing transactions (DESIGN.md §4): every transaction is simulated, signed
and recorded with its nonce (`ChainTx`) in the caller's database transaction before it is
sent, so a crashed or repeated task re-sends the same bytes instead of a second transaction.

Fees come from the chain's fee market: the tip from `eth_maxPriorityFeePerGas`, the max fee
covers BASE_FEE_MULTIPLIER times the head's base fee plus the tip. A transaction not mined
within TX_REPLACE_AFTER seconds is re-signed at the same nonce with both fees raised by at
least FEE_BUMP (12.5 %, above the 10 % nodes require of a replacement), recorded, and sent; any
of its hashes may be the one mined. A nonce gap (the node holds nothing below one of our
nonces) is logged as an error and counted (`workers_tx_nonce_gaps_total`): that transaction
cannot be mined until the gap is filled.

Only the money-moving side (settlement, the access sweep) imports this module; serving
(`workers/gateway/`) never does.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from prometheus_client import Counter
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from workers.chain.artifacts import decode_revert
from workers.chain.rpc import RpcError, TransientRpcError, with_rpc_retries
from workers.chain.views import Chain
from workers.config import Settings
from workers.db.settlement import ChainTx

log = logging.getLogger(__name__)

#: The node already has this exact transaction, or its nonce is used: the send is not lost.
_ALREADY_SENT = re.compile(r"already known|known transaction|already imported|nonce too low")
#: A recorded transaction's statuses before its outcome is known.
_IN_FLIGHT = ("signed", "sent")
#: Fees: the max fee covers this many doublings of the base fee.
BASE_FEE_MULTIPLIER = 2
#: Gas limit margin over eth_estimateGas, in percent.
GAS_MARGIN_PERCENT = 25
#: A replacement raises both fees by at least this fraction (numerator / denominator): 12.5 %.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 1_125, 1_000
#: Where the gas limit sits in a type-2 transaction's RLP list.
_GAS_FIELD = 4

#: Nonce gaps seen (an error each: that transaction waits for the gap to be filled).
NONCE_GAPS = Counter("workers_tx_nonce_gaps_total", "Nonce gaps below a sent transaction", ["sender"])
#: Transactions re-signed at their nonce with higher fees.
REPLACEMENTS = Counter("workers_tx_replacements_total", "Stuck transactions replaced", ["sender"])


def bumped(fee: int) -> int:
    """`fee` raised by FEE_BUMP, rounded up (a replacement must pay at least that)."""
    return -(-fee * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR)


def signed_gas(raw: str) -> int:
    """The gas limit of a signed EIP-1559 transaction (0x02 || rlp([chainId, nonce, tip,
    maxFee, gas, …]))."""
    fields = rlp.decode(bytes.fromhex(raw.removeprefix("0x"))[1:])
    return int.from_bytes(fields[_GAS_FIELD], "big")


def tx_hashes(tx: ChainTx) -> list[str]:
    """Every hash `tx` has been sent under: the current one first, then those it replaced."""
    return [tx.tx_hash, *json.loads(tx.replaced or "[]")]


class TxRevertError(RuntimeError):
    """A transaction (or its simulation) reverted; `reason` is the decoded custom error."""

    def __init__(self, what: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{what} reverts: {reason}")


class TxSender:
    """Sends the workers' transactions from one key.

    `record` picks the nonce, simulates, signs and stores the transaction in the caller's DB
    transaction; the caller commits, and only then `broadcast`s. A retry finds the row and
    re-broadcasts the very same signed bytes: the chain can include it once at most.
    """

    def __init__(self, chain: Chain, key: str, settings: Settings) -> None:
        self.chain = chain
        self.account: LocalAccount = Account.from_key(key)
        self.settings = settings

    @property
    def address(self) -> str:
        return self.account.address

    def lock_sender(self, session: Session) -> None:
        """Serialises, until `session`'s transaction ends, everything done for this sender."""
        # SQLite: the writing transaction already holds the database lock (BEGIN IMMEDIATE).
        if session.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(keccak(text=f"nonce:{self.address.lower()}")[:8], "big", signed=True)
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def next_nonce(self, session: Session) -> int:
        chain_nonce = int(
            with_rpc_retries(self.chain.rpc.call, "eth_getTransactionCount", [self.address, "pending"]), 16
        )
        recorded = session.scalar(
            select(func.max(ChainTx.nonce)).where(
                ChainTx.chain_id == self.chain.chain_id,
                ChainTx.sender == self.address,
                ChainTx.status.in_(("signed", "sent", "mined", "reverted")),
            )
        )
        return max(chain_nonce, -1 if recorded is None else recorded + 1)

    def simulate(self, to: str, data: str, what: str) -> int:
        """eth_estimateGas of the call; TxRevertError with the decoded reason if it reverts."""
        try:
            estimate = self.chain.rpc.call(
                "eth_estimateGas", [{"from": self.address, "to": to, "data": data}]
            )
        except TransientRpcError:
            raise
        except RpcError as exc:
            raise TxRevertError(what, decode_revert(exc.data) if exc.data else str(exc)) from exc
        return int(estimate, 16)

    def record(self, session: Session, purpose: str, to: str, data: str) -> ChainTx:
        """Signs a transaction calling `to` with `data` and adds it (status `signed`) to `session`."""
        self.lock_sender(session)
        gas = min(
            self.simulate(to, data, purpose) * (100 + GAS_MARGIN_PERCENT) // 100, self.settings.tx_gas_limit
        )
        nonce = self.next_nonce(session)
        max_fee, tip = self.market_fees()
        raw, tx_hash = self._sign(nonce, to, data, gas=gas, max_fee=max_fee, tip=tip)
        row = ChainTx(
            purpose=purpose,
            chain_id=self.chain.chain_id,
            sender=self.address,
            nonce=nonce,
            to=to,
            data=data,
            raw=raw,
            tx_hash=tx_hash,
            status="signed",
            max_fee=max_fee,
            priority_fee=tip,
            replaced="[]",
        )
        session.add(row)
        session.flush()
        return row

    def market_fees(self) -> tuple[int, int]:
        """(max fee, tip) per gas from the chain's fee market: the node's suggested tip
        (eth_maxPriorityFeePerGas; TX_PRIORITY_FEE where the node has none) and the head's
        base fee, BASE_FEE_MULTIPLIER times over."""
        try:
            tip = int(with_rpc_retries(self.chain.rpc.call, "eth_maxPriorityFeePerGas", []), 16)
        except TransientRpcError:
            raise
        except RpcError as exc:
            log.warning(
                "eth_maxPriorityFeePerGas unavailable (%s): tip %s", exc, self.settings.tx_priority_fee
            )
            tip = self.settings.tx_priority_fee
        head = with_rpc_retries(self.chain.rpc.get_block, with_rpc_retries(self.chain.rpc.block_number))
        base_fee = int(head.get("baseFeePerGas", "0x0"), 16)
        return base_fee * BASE_FEE_MULTIPLIER + tip, tip

    def _sign(self, nonce: int, to: str, data: str, *, gas: int, max_fee: int, tip: int) -> tuple[str, str]:
        signed = self.account.sign_transaction(
            {
                "chainId": self.chain.chain_id,
                "nonce": nonce,
                "to": to_checksum_address(to),
                "data": data,
                "value": 0,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
                "type": 2,
            }
        )
        return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()

    def replace(self, session: Session, tx: ChainTx) -> ChainTx:
        """Re-signs the stored `tx` (locked in `session`) at its nonce with both fees raised by
        at least FEE_BUMP, and to the market's fees if those are higher; the old hash is kept
        in `replaced` (it may still be the one mined). The caller commits, then broadcasts."""
        self.lock_sender(session)
        max_fee, tip = self.market_fees()
        tip = max(tip, bumped(tx.priority_fee or 0))
        max_fee = max(max_fee, bumped(tx.max_fee or 0), tip)
        gas = signed_gas(tx.raw)  # the same limit: the call is the same
        raw, tx_hash = self._sign(tx.nonce, tx.to, tx.data, gas=gas, max_fee=max_fee, tip=tip)
        tx.replaced = json.dumps(tx_hashes(tx))
        tx.raw, tx.tx_hash, tx.max_fee, tx.priority_fee, tx.status = raw, tx_hash, max_fee, tip, "signed"
        session.flush()
        REPLACEMENTS.labels(self.address).inc()
        log.warning("tx %s (nonce %s) not mined in time: replaced by %s (max fee %s, tip %s)",
                    tx_hashes(tx)[1], tx.nonce, tx_hash, max_fee, tip)  # fmt: skip
        return tx

    def broadcast(self, tx: ChainTx) -> None:
        """Sends the recorded bytes; a node that already has them (or mined them) is fine."""
        try:
            self.chain.rpc.call("eth_sendRawTransaction", [tx.raw])
        except TransientRpcError:
            raise
        except RpcError as exc:
            if not _ALREADY_SENT.search(str(exc).lower()):
                raise
            log.info("tx %s (nonce %s) already known to the node: %s", tx.tx_hash, tx.nonce, exc)

    def send_recorded(self, engine: Engine, tx: ChainTx) -> None:
        """Broadcasts a recorded transaction and marks its row sent, unless another worker has
        meanwhile replaced it or seen it mined, dropped or reverted: a late "sent" must never
        overwrite an outcome (two settlers racing on one root did exactly that)."""
        self.broadcast(tx)
        with Session(bind=engine) as session, session.begin():
            session.execute(
                ChainTx.__table__.update()
                .where(ChainTx.id == tx.id, ChainTx.tx_hash == tx.tx_hash, ChainTx.status.in_(_IN_FLIGHT))
                .values(status="sent", sent_at=datetime.now(UTC))
            )
        if tx.status in _IN_FLIGHT:
            tx.status = "sent"

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        return with_rpc_retries(self.chain.rpc.call, "eth_getTransactionReceipt", [tx_hash])

    def mined_receipt(self, tx: ChainTx) -> dict[str, Any] | None:
        """The receipt of whichever of `tx`'s hashes was mined, if one was."""
        for tx_hash in tx_hashes(tx):
            receipt = self.receipt(tx_hash)
            if receipt is not None:
                return receipt
        return None

    def check_gap(self, tx: ChainTx) -> bool:
        """Whether the node holds nothing below `tx`'s nonce that it has not mined: then `tx`
        waits for a gap to be filled. An error log and NONCE_GAPS count it."""
        pending = int(
            with_rpc_retries(self.chain.rpc.call, "eth_getTransactionCount", [tx.sender, "pending"]), 16
        )
        if pending >= tx.nonce:
            return False
        NONCE_GAPS.labels(tx.sender).inc()
        log.error(
            "nonce gap: %s's tx %s has nonce %s but the node's next nonce is %s; nonces %s..%s have "
            "no transaction and %s cannot be mined until they do",
            tx.sender, tx.tx_hash, tx.nonce, pending, pending, tx.nonce - 1, tx.purpose,
        )  # fmt: skip
        return True

    def wait_receipt(
        self, tx: ChainTx, timeout: float | None = None, poll: float = 0.2, engine: Engine | None = None
    ) -> dict[str, Any] | None:
        """The receipt of `tx` once mined (under any of its hashes); None if its nonce went to
        another transaction. With `engine`, a transaction not mined within TX_REPLACE_AFTER
        seconds of its sending is replaced (`replace`, stored, sent) and waited for again."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.settings.tx_receipt_timeout)
        replace_at = time.monotonic() + self.settings.tx_replace_after
        gap_reported = False
        while True:
            receipt = self.mined_receipt(tx)
            if receipt is not None:
                return receipt
            chain_nonce = int(
                with_rpc_retries(self.chain.rpc.call, "eth_getTransactionCount", [tx.sender, "latest"]), 16
            )
            if chain_nonce > tx.nonce:
                # The nonce is used; re-check our hashes once more before calling it dropped.
                return self.mined_receipt(tx)
            if not gap_reported:
                gap_reported = self.check_gap(tx)
            if engine is not None and time.monotonic() >= replace_at:
                self._replace_stored(engine, tx)
                replace_at = time.monotonic() + self.settings.tx_replace_after
            if time.monotonic() > deadline:
                raise TransientRpcError(
                    "eth_getTransactionReceipt", f"{tx.tx_hash} not mined within the timeout"
                )
            time.sleep(poll)

    def _replace_stored(self, engine: Engine, tx: ChainTx) -> None:
        """Replaces `tx` in its own committed DB transaction, then sends the new bytes."""
        with Session(bind=engine, expire_on_commit=False) as session, session.begin():
            stored = session.scalars(select(ChainTx).where(ChainTx.id == tx.id).with_for_update()).one()
            if stored.tx_hash != tx.tx_hash or stored.status not in _IN_FLIGHT:
                fresh = stored  # another worker replaced or finished it meanwhile: follow it
            else:
                fresh = self.replace(session, stored)
            for column in ("raw", "tx_hash", "max_fee", "priority_fee", "replaced", "status"):
                setattr(tx, column, getattr(fresh, column))
        if tx.status in _IN_FLIGHT:
            self.send_recorded(engine, tx)
