"""A small typed client of the gateway for wallets, scripts and the demo: Sign-In with
Ethereum, then the DESIGN.md §4 endpoints. Refusals raise `GatewayRefusedError` carrying the
RFC 9457 problem document (its stable `reason`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

#: Seconds one gateway request may take.
REQUEST_TIMEOUT = 30.0


class GatewayRefusedError(RuntimeError):
    """The gateway answered a problem document (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.reason = str(problem.get("reason", "unknown"))
        super().__init__(f"{status} {self.reason}: {problem.get('detail', '')}")


@dataclass
class GatewayClient:
    """One wallet's session with the gateway at `base_url`."""

    base_url: str
    token: str | None = None
    address: str | None = None

    def _client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT)

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except json.JSONDecodeError:
                problem = {"reason": "http_error", "detail": response.text[:500]}
            raise GatewayRefusedError(response.status_code, problem)
        return response.json() if response.content else None

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._client() as client:
            return self._answer(client.request(method, path, **kwargs))

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def sign_in(self, private_key: str) -> GatewayClient:
        """EIP-4361: ask for a nonce and message, sign it with the wallet key, keep the token."""
        account = Account.from_key(private_key)
        offer = self.post("/auth/nonce", {"address": account.address})
        signature = Account.sign_message(encode_defunct(text=offer["message"]), private_key).signature
        session = self.post(
            "/auth/verify", {"message": offer["message"], "signature": "0x" + signature.hex()}
        )
        self.token, self.address = session["token"], session["address"]
        return self

    def sign_out(self) -> int:
        """POST /auth/logout: this token stops working at once; sessions ended (0 or 1)."""
        return int(self.post("/auth/logout")["revoked"])

    def revoke_all_sessions(self) -> int:
        """POST /auth/revoke-all: every token of this address stops working; how many."""
        return int(self.post("/auth/revoke-all")["revoked"])

    def latest_signals(self, product_id: int, vehicle_id: int) -> dict[str, Any]:
        return self.get(f"/v1/products/{product_id}/vehicles/{vehicle_id}/signals/latest")

    def command(self, vehicle_id: int, command: str) -> dict[str, Any]:
        return self.post(f"/v1/vehicles/{vehicle_id}/commands/{command}")

    def stream(self, order_id: int, events: int, **params: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """Reads server-sent events of an order's live stream as (event, data) pairs until
        `events` of them have come or the server ends the stream, then closes it."""
        query = {k: v for k, v in params.items() if v is not None}
        path = f"/v1/orders/{order_id}/stream"
        with self._client() as client, client.stream("GET", path, params=query) as response:
            if response.status_code >= 400:
                response.read()
                self._answer(response)
            name, seen = "message", 0
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    yield name, json.loads(line[5:].strip())
                    seen += 1
                    if seen >= events or name == "end":
                        return
                    name = "message"
