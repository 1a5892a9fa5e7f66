"""The metered `signals/latest` served straight from ASGI, ahead of FastAPI's routing and
dependency machinery (which costs more CPU than the access check itself).

Same code as the documented FastAPI route (`routes_signals.metered_latest`, `deps.identify`,
the same problem documents and refusal log); only the framework is skipped. Anything the
fast path does not recognise exactly (other methods, other query parameters, ids outside
uint256) goes on to FastAPI, which validates and answers it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from workers.gateway.deps import identify, require_fresh_index
from workers.gateway.problems import PROBLEM_MEDIA_TYPE, Problem, log_refusal_of
from workers.gateway.routes_signals import _names, metered_latest
from workers.gateway.state import GatewayState
from workers.observability import REQUEST_ID_HEADER, request_id_of
from workers.protocol import UINT256_MAX

LATEST = re.compile(r"^/v1/products/(\d{1,78})/vehicles/(\d{1,78})/signals/latest$")
TEMPLATE = "/v1/products/{productId}/vehicles/{vehicleId}/signals/latest"


@dataclass(frozen=True)
class _Route:
    """What the metrics middleware reads from `scope["route"]`."""

    path: str = TEMPLATE


ROUTE = _Route()


def _bearer(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class MeteredFastPath:
    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = LATEST.match(scope["path"])
        query = parse_qs(scope["query_string"].decode("latin-1")) if scope["query_string"] else {}
        if match is None or set(query) - {"names"} or len(query.get("names", [])) > 1:
            await self.app(scope, receive, send)
            return
        product_id, vehicle_id = int(match[1]), int(match[2])
        if product_id > UINT256_MAX or vehicle_id > UINT256_MAX:
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        request_id = request_id_of(scope)
        caller: str | None = None
        try:
            require_fresh_index(self.state)
            identity = identify(self.state, _bearer(scope), check_session=False)
            caller = identity.address
            names = _names(query["names"][0]) if "names" in query else None
            body, left = await self.state.metered_store.run(
                metered_latest, self.state, identity, product_id, vehicle_id, names
            )
        except Problem as problem:
            log_refusal_of("GET", scope["path"], caller, problem)
            scope.setdefault("state", {})["refusal_reason"] = problem.reason
            doc = problem.body(scope["path"])
            headers = {**problem.headers, REQUEST_ID_HEADER: request_id}
            await _send(send, problem.status, _json(doc), PROBLEM_MEDIA_TYPE, headers)
            return
        headers = {"x-credits-remaining": str(left), REQUEST_ID_HEADER: request_id}
        await _send(send, 200, body, "application/json", headers)


def _json(doc: dict) -> bytes:
    return json.dumps(doc).encode()


async def _send(send: Send, status: int, body: bytes, media_type: str, headers: dict[str, str]) -> None:
    raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
