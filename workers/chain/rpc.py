"""The workers' JSON-RPC client (DESIGN.md §4): one keep-alive HTTP session per thread,
batches, and errors that say what went wrong and whether a retry may help.

The indexer talks raw JSON-RPC: it moves many logs and web3's per-field formatting would
dominate. Everything else may use the web3 handle of the chain (`workers.chain.views.Chain`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from itertools import count
from typing import Any

import requests

log = logging.getLogger(__name__)

#: JSON-RPC error messages (lower-cased) by which nodes refuse an eth_getLogs range as too big.
_RANGE_ERROR = re.compile(
    r"block range|range too|range is too|too many|more than|limit exceeded|exceed|too large|"
    r"response size|query timeout|max results|results limit"
)
#: Seconds to wait when a node answers 429 without a Retry-After header.
DEFAULT_RETRY_AFTER = 1.0


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

    def get_block_by_tag(self, tag: str) -> dict[str, Any] | None:
        """The header at `tag` ("latest", "finalized", …); None when the node does not know
        the tag (chains without finality answer an error or null)."""
        try:
            return self.call("eth_getBlockByNumber", [tag, False])
        except TransientRpcError:
            raise
        except RpcError:
            if tag == "latest":
                raise
            return None

    def get_logs_at(self, addresses: list[str], block_hash: str) -> list[dict[str, Any]]:
        """eth_getLogs of `addresses` in the block `block_hash` (EIP-234): a node that does not
        have the block answers an error, not `[]`."""
        logs = self.call("eth_getLogs", [{"address": addresses, "blockHash": block_hash}])
        if not isinstance(logs, list):
            raise RpcError("eth_getLogs", f"expected a list of logs, got {type(logs).__name__}")
        return logs

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
