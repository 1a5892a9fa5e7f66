"""The workers' view of the chain (DESIGN.md §4): a JSON-RPC client that says clearly what
went wrong, the deployment manifest checked against the chain, contract handles with ABIs
from the compiled artifacts, and transactions sent with nonces recorded before sending.

The indexer talks raw JSON-RPC (`Rpc`): it moves many logs and web3's per-field formatting
would dominate. Everything else may use the web3 handle (`Chain.w3`, `Chain.contract`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from itertools import count
from pathlib import Path
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from web3 import Web3
from web3.contract import Contract

from workers.config import Settings, get_settings
from workers.contracts import ARTIFACTS_FILE, Manifest, ManifestError, _artifact_index, load_artifact
from workers.db.settlement import ChainTx

log = logging.getLogger(__name__)

#: JSON-RPC error messages (lower-cased) by which nodes refuse an eth_getLogs range as too big.
_RANGE_ERROR = re.compile(
    r"block range|range too|range is too|too many|more than|limit exceeded|exceed|too large|"
    r"response size|query timeout|max results|results limit"
)
#: The node already has this exact transaction, or its nonce is used: the send is not lost.
_ALREADY_SENT = re.compile(r"already known|known transaction|already imported|nonce too low")
#: Seconds to wait when a node answers 429 without a Retry-After header.
DEFAULT_RETRY_AFTER = 1.0
#: Fees: the max fee covers this many doublings of the base fee.
BASE_FEE_MULTIPLIER = 2
#: Gas limit margin over eth_estimateGas, in percent.
GAS_MARGIN_PERCENT = 25


class RpcError(RuntimeError):
    """The node answered a JSON-RPC call with an error (or not with JSON-RPC at all)."""

    def __init__(self, method: str, message: str, code: int | None = None, data: Any = None) -> None:
        self.method = method
        self.message = message
        self.code = code
        self.data = data
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))


class TransientRpcError(RpcError):
    """Worth retrying later: timeout, connection refused, HTTP 429 or 5xx."""

    def __init__(self, method: str, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(method, message)


class RangeTooLargeError(RpcError):
    """The node refused an eth_getLogs range as too large or as returning too many logs."""


class DeploymentMismatchError(ManifestError):
    """The deployment manifest does not describe the chain the RPC is connected to."""


class TxRevertError(RuntimeError):
    """A transaction (or its simulation) reverted; `reason` is the decoded custom error."""

    def __init__(self, what: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{what} reverts: {reason}")


# --- JSON-RPC ------------------------------------------------------------------------------


class Rpc:
    """A small, thread-safe JSON-RPC client over one keep-alive HTTP session."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._ids = count(1)
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _post(self, method: str, body: Any) -> Any:
        try:
            response = self._session.post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            raise TransientRpcError(method, f"no answer from {self.url} within {self.timeout}s") from exc
        except requests.ConnectionError as exc:
            raise TransientRpcError(method, f"cannot reach {self.url}: {exc}") from exc
        if response.status_code == 429:
            raise TransientRpcError(
                method, f"{self.url} is rate limiting (HTTP 429)", _retry_after(response.headers)
            )
        if response.status_code >= 500:
            raise TransientRpcError(method, f"{self.url} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise RpcError(
                method,
                f"{self.url} answered HTTP {response.status_code} with non-JSON: {response.text[:200]!r}",
            ) from exc

    def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; its `result`, or an RpcError subclass saying what went wrong."""
        answer = self._post(
            method, {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        return _result(method, answer)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; results in the order of `calls`."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        answer = self._post(calls[0][0], body)
        if not isinstance(answer, list):
            return [_result(calls[0][0], answer)]  # a node refusing batches answers one error
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        results = []
        for i, (method, _params) in zip(ids, calls, strict=True):
            if i not in by_id:
                raise RpcError(method, "missing from the batch answer")
            results.append(_result(method, by_id[i]))
        return results

    # --- the calls the workers use --------------------------------------------------------

    def chain_id(self) -> int:
        return int(self.call("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def get_block(self, number: int) -> dict[str, Any]:
        block = self.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise RpcError("eth_getBlockByNumber", f"block {number} does not exist (yet)")
        return block

    def get_blocks(self, numbers: list[int]) -> list[dict[str, Any]]:
        """Headers of `numbers`, in one batch per 100 blocks."""
        headers: list[dict[str, Any]] = []
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            answers = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for n, block in zip(chunk, answers, strict=True):
                if block is None:
                    raise RpcError("eth_getBlockByNumber", f"block {n} does not exist (yet)")
                headers.append(block)
        return headers

    def get_logs(self, addresses: list[str], from_block: int, to_block: int) -> list[dict[str, Any]]:
        """eth_getLogs of `addresses` over [from_block, to_block]; RangeTooLargeError when refused."""
        params = [{"address": addresses, "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        try:
            logs = self.call("eth_getLogs", params)
        except RangeTooLargeError:
            raise
        except TransientRpcError:
            raise
        except RpcError as exc:
            if exc.code == -32005 or _RANGE_ERROR.search(str(exc).lower()):
                raise RangeTooLargeError("eth_getLogs", exc.message, exc.code, exc.data) from exc
            raise
        if not isinstance(logs, list):
            raise RpcError("eth_getLogs", f"expected a list of logs, got {type(logs).__name__}")
        return logs


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", DEFAULT_RETRY_AFTER)))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def _result(method: str, answer: Any) -> Any:
    if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
        raise RpcError(method, f"not a JSON-RPC answer: {str(answer)[:200]!r}")
    if "error" in answer and answer["error"] is not None:
        error = answer["error"] if isinstance(answer["error"], dict) else {"message": str(answer["error"])}
        code = error.get("code")
        message = str(error.get("message", "unknown error"))
        if code == 429 or "rate limit" in message.lower():
            raise TransientRpcError(method, message)
        raise RpcError(method, message, code, error.get("data"))
    return answer["result"]


def with_rpc_retries(fn: Any, *args: Any, attempts: int = 5, base_delay: float = 0.25, **kwargs: Any) -> Any:
    """Calls `fn`, retrying TransientRpcError with exponential backoff (and Retry-After)."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except TransientRpcError as exc:
            if attempt == attempts - 1:
                raise
            delay = max(exc.retry_after or 0.0, base_delay * 2**attempt)
            log.warning("%s; retrying in %.2fs", exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


# --- the deployment on the chain ------------------------------------------------------------


@dataclass
class Chain:
    """One connected chain with its verified deployment."""

    rpc: Rpc
    w3: Web3
    manifest: Manifest
    manifest_file: Path
    chain_id: int
    _contracts: dict[str, Contract] = field(default_factory=dict)

    def contract(self, name: str) -> Contract:
        """A web3 handle of the deployed contract `name`, ABI from the compiled artifacts."""
        if name not in self._contracts:
            address = to_checksum_address(self.manifest.address(name))
            self._contracts[name] = self.w3.eth.contract(address=address, abi=load_artifact(name).abi)
        return self._contracts[name]

    def has(self, name: str) -> bool:
        return name in self.manifest.contracts


def verify_deployment(rpc: Rpc, manifest: Manifest, path: Path) -> int:
    """Checks that the chain behind `rpc` holds the deployment in `manifest`; its chain id.

    Raises DeploymentMismatchError naming every difference: the chain id, and each contract
    without code at its address."""
    chain_id = with_rpc_retries(rpc.chain_id)
    if chain_id != manifest.chain_id:
        raise DeploymentMismatchError(
            f"{path} is for chain {manifest.chain_id}, but {rpc.url} is chain {chain_id}: "
            "point DEPLOYMENT_FILE at this chain's manifest or RPC_URL at the manifest's chain"
        )
    names = sorted(manifest.contracts)
    codes = with_rpc_retries(rpc.batch, [("eth_getCode", [manifest.contracts[n], "latest"]) for n in names])
    missing = [
        f"{n} at {manifest.contracts[n]}"
        for n, code in zip(names, codes, strict=True)
        if code in (None, "0x", "")
    ]
    if missing:
        raise DeploymentMismatchError(
            f"{path} does not match chain {chain_id} at {rpc.url}: no contract code for "
            + ", ".join(missing)
            + " (a different chain or a reset node: redeploy with `make deploy` or fix DEPLOYMENT_FILE)"
        )
    head = with_rpc_retries(rpc.block_number)
    if manifest.block > head:
        raise DeploymentMismatchError(
            f"{path} says the deployment starts at block {manifest.block}, but the chain's head is {head}"
        )
    return chain_id


def connect(settings: Settings | None = None) -> Chain:
    """Connects to RPC_URL and loads and verifies the deployment manifest against it."""
    settings = settings or get_settings()
    rpc = Rpc(settings.rpc_url, settings.rpc_timeout)
    chain_id = with_rpc_retries(rpc.chain_id)
    path = settings.manifest_file(chain_id)
    manifest = Manifest.read(path)
    verify_deployment(rpc, manifest, path)
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.rpc_timeout}))
    return Chain(rpc=rpc, w3=w3, manifest=manifest, manifest_file=path, chain_id=chain_id)


_chains: dict[tuple[str, str], Chain] = {}


def get_chain(settings: Settings | None = None) -> Chain:
    """The verified chain for the current settings, connected once per process."""
    settings = settings or get_settings()
    key = (settings.rpc_url, str(settings.deployment_file or ""))
    if key not in _chains:
        _chains[key] = connect(settings)
    return _chains[key]


def forget_chains() -> None:
    """Drops cached connections (tests switching chains)."""
    _chains.clear()


# --- revert reasons -------------------------------------------------------------------------


@cache
def _error_selectors(artifacts: Path = ARTIFACTS_FILE) -> dict[bytes, tuple[str, list[str]]]:
    selectors: dict[bytes, tuple[str, list[str]]] = {
        bytes.fromhex("08c379a0"): ("Error", ["string"]),
        bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
    }
    for contract_type in _artifact_index(artifacts).values():
        for item in contract_type.get("abi", []):
            if item.get("type") == "error":
                types = [abi_type(i) for i in item.get("inputs", [])]
                signature = f"{item['name']}({','.join(types)})"
                selectors[keccak(text=signature)[:4]] = (item["name"], types)
    return selectors


def abi_type(item: dict[str, Any]) -> str:
    """The canonical ABI type string of an ABI input (tuples spelled out)."""
    kind = item["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[len("tuple") :]
    return kind


def decode_revert(data: Any) -> str:
    """`Name(arg, …)` for revert data of any project error, else the raw data."""
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return f"reverted without data ({data!r})"
    raw = bytes.fromhex(data[2:])
    known = _error_selectors().get(raw[:4])
    if known is None:
        return f"unknown error {data[:10]} ({data})"
    name, types = known
    try:
        values = abi_decode(types, raw[4:])
    except Exception:
        return f"{name}(<undecodable {data}>)"
    return f"{name}({', '.join(_fmt(v) for v in values)})"


def _fmt(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


# --- transactions with recorded nonces ---------------------------------------------------


class TxSender:
    """Sends the workers' transactions from one key.

    `record` picks the nonce, simulates, signs and stores the transaction in the caller's DB
    transaction; the caller commits, and only then `broadcast`s. A retry finds the row and
    re-broadcasts the very same signed bytes: the chain can include it once at most.
    """

    def __init__(self, chain: Chain, key: str, settings: Settings | None = None) -> None:
        self.chain = chain
        self.account: LocalAccount = Account.from_key(key)
        self.settings = settings or get_settings()

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
        base_fee = int(
            with_rpc_retries(self.chain.rpc.get_block, _latest_number(self.chain.rpc)).get(
                "baseFeePerGas", "0x0"
            ),
            16,
        )
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


def _latest_number(rpc: Rpc) -> int:
    return rpc.block_number()


def json_dumps(value: Any) -> str:
    """Compact JSON (the workers' storage format)."""
    return json.dumps(value, separators=(",", ":"))
