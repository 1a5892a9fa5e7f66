"""Response helpers shared by the simulator's APIs: each OEM's error shapes and the
injected faults (rate limits, outages, malformed bodies)."""

from __future__ import annotations

import json
import secrets
from email.utils import formatdate
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from devkit.simulator.state import Fault, RateScope, RetryAfterForm, SimState

SMARTCAR_DOCS = "https://smartcar.com/docs/errors/api-errors"


def sim(request: Request) -> SimState:
    return request.app.state.sim


def api_of(path: str) -> str:
    """Which API a request path belongs to (faults and stats are kept per API)."""
    if path.startswith("/v2.0/"):
        return "smartcar"
    if path.startswith("/api/1/"):
        return "tesla"
    if path.startswith(("/oauth", "/oauth2/")):
        return "oauth"
    return "control"


def smartcar_error(
    status: int, type_: str, code: str | None, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Smartcar's v2 error body (what smartcar.exception.exception_factory parses)."""
    body = {
        "type": type_,
        "code": code,
        "description": description,
        "docURL": f"{SMARTCAR_DOCS}/{type_.lower()}",
        "statusCode": status,
        "requestId": secrets.token_hex(8),
        "resolution": {"type": "RETRY_LATER" if status in (429, 500, 502, 503) else None},
        "suggestedUserMessage": description,
        "detail": None,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def tesla_error(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Tesla Fleet API's error body."""
    return JSONResponse(
        {"response": None, "error": error, "error_description": ""}, status_code=status, headers=headers
    )


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def rate_limited(
    api: str,
    retry_after: int,
    *,
    now: float,
    form: RetryAfterForm = "seconds",
    scope: RateScope = "vehicle",
) -> Response:
    """A 429 in the API's shape; Retry-After in `form` (an HTTP-date is `now` + retry_after).
    Smartcar says what it limits in the error code (VEHICLE or SMARTCAR_API); Tesla's limits
    are per vehicle and its 429 body says no more than the status."""
    after = str(retry_after) if form == "seconds" else formatdate(now + retry_after, usegmt=True)
    headers = {"Retry-After": after, "RateLimit-Reset": str(retry_after)}
    if api == "smartcar":
        if scope == "application":
            description = "Too many requests from this application."
            return smartcar_error(429, "RATE_LIMIT", "SMARTCAR_API", description, headers)
        return smartcar_error(429, "RATE_LIMIT", "VEHICLE", "Too many requests to this vehicle.", headers)
    if api == "tesla":
        return tesla_error(429, "Rate limit exceeded", headers)
    return JSONResponse({"error": "rate_limited"}, status_code=429, headers=headers)


def over_rate(api: str, state: SimState) -> Response:
    """The 429 of a token past SimConfig.rate_limit (sustained rate: vehicle scope)."""
    state.stats.rate_limited += 1
    config = state.config
    return rate_limited(api, config.rate_retry_after, now=state.now(), form=config.rate_retry_after_form)


def outage(api: str, status: int) -> Response:
    if api == "smartcar" and status == 500:
        return smartcar_error(500, "SERVER", "INTERNAL", "Smartcar experienced an unexpected error.")
    return PlainTextResponse("upstream connect error or disconnect/reset before headers", status_code=status)


def gate(state: SimState, api: str) -> Response | None:
    """The injected rate-limit or outage answer for this request, if one is armed."""
    fault = state.take_fault(api, ("rate_limit", "outage"))
    if fault is None:
        return None
    if fault.kind == "rate_limit":
        state.stats.rate_limited += 1
        return rate_limited(
            api, fault.retry_after, now=state.now(), form=fault.retry_after_form, scope=fault.scope
        )
    state.stats.outages += 1
    return outage(api, fault.status)


def _break(body: Any, fault: Fault) -> bytes:
    if fault.mode == "truncated":
        text = json.dumps(body)
        return text[: max(1, len(text) // 2)].encode()
    if fault.mode == "missing_fields":
        if isinstance(body, dict) and isinstance(body.get("response"), dict):
            return json.dumps({"response": {"vin": body["response"].get("vin")}}).encode()
        return json.dumps({}).encode()
    return json.dumps(_wrong_types(body)).encode()


def _wrong_types(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return f"{value}?"
    if isinstance(value, dict):
        return {k: _wrong_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrong_types(v) for v in value]
    return value


def payload(state: SimState, api: str, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, broken on purpose while a `malformed` fault is armed for `api`."""
    fault = state.take_fault(api, ("malformed",))
    if fault is None:
        return JSONResponse(body, headers=headers)
    state.stats.malformed += 1
    return Response(_break(body, fault), media_type="application/json", headers=headers)
