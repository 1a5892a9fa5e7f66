"""The workers' outgoing transactions (DESIGN.md §4): every transaction is simulated, signed
and recorded with its nonce (`ChainTx`) in the caller's database transaction before it is
sent, so a crashed or repeated task re-sends the same bytes instead of a second transaction.

Only the money-moving side (settlement, the access sweep) imports this module; serving
(`workers/gateway/`) never does.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from workers.chain.artifacts import decode_revert
from workers.chain.rpc import RpcError, TransientRpcError, with_rpc_retries
from workers.chain.views import Chain
from workers.config import Settings
from workers.db.settlement import ChainTx

log = logging.getLogger(__name__)

#: The node already has this exact transaction, or its nonce is used: the send is not lost.
_ALREADY_SENT = re.compile(r"already known|known transaction|already imported|nonce too low")
#: Fees: the max fee covers this many doublings of the base fee.
BASE_FEE_MULTIPLIER = 2
#: Gas limit margin over eth_estimateGas, in percent.
GAS_MARGIN_PERCENT = 25


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

    def _lock_sender(self, session: Session) -> None:
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
        self._lock_sender(session)
        gas = min(
            self.simulate(to, data, purpose) * (100 + GAS_MARGIN_PERCENT) // 100, self.settings.tx_gas_limit
        )
        nonce = self.next_nonce(session)
        head = with_rpc_retries(self.chain.rpc.get_block, self.chain.rpc.block_number())
        base_fee = int(head.get("baseFeePerGas", "0x0"), 16)
        tip = self.settings.tx_priority_fee
        tx = {
            "chainId": self.chain.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "data": data,
            "value": 0,
            "gas": gas,
            "maxFeePerGas": base_fee * BASE_FEE_MULTIPLIER + tip,
            "maxPriorityFeePerGas": tip,
            "type": 2,
        }
        signed = self.account.sign_transaction(tx)
        row = ChainTx(
            purpose=purpose,
            chain_id=self.chain.chain_id,
            sender=self.address,
            nonce=nonce,
            to=to,
            data=data,
            raw="0x" + signed.raw_transaction.hex(),
            tx_hash="0x" + signed.hash.hex(),
            status="signed",
        )
        session.add(row)
        session.flush()
        return row

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

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        return with_rpc_retries(self.chain.rpc.call, "eth_getTransactionReceipt", [tx_hash])

    def wait_receipt(
        self, tx: ChainTx, timeout: float | None = None, poll: float = 0.2
    ) -> dict[str, Any] | None:
        """The receipt of `tx` once mined; None if its nonce went to another transaction."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.settings.tx_receipt_timeout)
        while True:
            receipt = self.receipt(tx.tx_hash)
            if receipt is not None:
                return receipt
            chain_nonce = int(self.chain.rpc.call("eth_getTransactionCount", [tx.sender, "latest"]), 16)
            if chain_nonce > tx.nonce:
                # The nonce is used; re-check our hash once more before calling it dropped.
                return self.receipt(tx.tx_hash)
            if time.monotonic() > deadline:
                raise TransientRpcError(
                    "eth_getTransactionReceipt", f"{tx.tx_hash} not mined within the timeout"
                )
            time.sleep(poll)
