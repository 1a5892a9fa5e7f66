"""A JSON-RPC proxy in front of anvil that misbehaves on purpose: refuses large eth_getLogs
ranges the way hosted nodes do, answers HTTP 429, stalls past the client's timeout, corrupts
logs, answers logs like a lagging node, or runs a hook (e.g. a reorg) right after answering a call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tests.support.anvil import free_port


@dataclass
class Faults:
    """What the proxy does to the calls it forwards; tests change it while running."""

    #: Refuse eth_getLogs over more blocks than this (JSON-RPC error -32005).
    max_log_range: int | None = None
    #: Refuse eth_getLogs answers with more logs than this.
    max_logs: int | None = None
    #: Answer the next N requests with HTTP 429.
    rate_limit_next: int = 0
    #: Stall the next N requests for `stall_seconds` before answering.
    stall_next: int = 0
    stall_seconds: float = 3.0
    #: Rewrites the logs of eth_getLogs answers (malformed logs).
    corrupt_logs: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    #: A node lagging behind the one that answered the head: eth_getLogs over a block range
    #: answers `[]`, and by block hash answers "unknown block".
    lagging_logs: bool = False
    #: Refuse eth_call at past blocks, as a node without archive state does.
    no_archive: bool = False
    #: Runs after answering a call of this method, once: (method, hook).
    after_call: tuple[str, Callable[[], None]] | None = None
    #: Count of calls per method.
    calls: dict[str, int] = field(default_factory=dict)


class RpcProxy:
    """`url` forwards to `upstream` through `faults`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults = Faults()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = proxy.handle(json.loads(body))
                payload = json.dumps(answer).encode() if answer is not None else b"slow down"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 429:
                    self.send_header("Retry-After", "0.2")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _take(self, name: str) -> bool:
        with self._lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    def handle(self, request: Any) -> tuple[int, Any]:
        if self._take("rate_limit_next"):
            return 429, None
        if self._take("stall_next"):
            time.sleep(self.faults.stall_seconds)
        if isinstance(request, list):
            return 200, [self._one(r) for r in request]
        return 200, self._one(request)

    def _one(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request.get("method", "")
        with self._lock:
            self.faults.calls[method] = self.faults.calls.get(method, 0) + 1
        if method == "eth_getLogs" and self.faults.max_log_range is not None:
            spec = request["params"][0]
            span = int(spec["toBlock"], 16) - int(spec["fromBlock"], 16) + 1
            if span > self.faults.max_log_range:
                return _error(request, -32005, f"block range too large: {span} > {self.faults.max_log_range}")
        if method == "eth_getLogs" and self.faults.lagging_logs:
            if "blockHash" in request["params"][0]:
                return _error(request, -32000, "unknown block")
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": []}
        if method == "eth_call" and self.faults.no_archive and request["params"][1:] not in ([], ["latest"]):
            return _error(request, -32000, "missing trie node 4f0c… (path ) state is not available")
        answer = self._session.post(self.upstream, json=request, timeout=60).json()
        if method == "eth_getLogs" and "result" in answer:
            if self.faults.max_logs is not None and len(answer["result"]) > self.faults.max_logs:
                return _error(request, -32005, f"query returned more than {self.faults.max_logs} results")
            if self.faults.corrupt_logs is not None:
                answer["result"] = self.faults.corrupt_logs(answer["result"])
        hook = self.faults.after_call
        if hook is not None and hook[0] == method:
            self.faults.after_call = None
            hook[1]()
        return answer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _error(request: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": code, "message": message}}
