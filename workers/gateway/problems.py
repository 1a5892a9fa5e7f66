"""RFC 9457 problem details: every refusal of the gateway is one `Problem`, answered as
`application/problem+json` with `status`, `title`, `detail` and a stable `reason` code, and
logged (DESIGN.md §4)."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("workers.gateway.refusals")

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: reason code -> (HTTP status, title). The codes are stable: clients branch on them.
REASONS: dict[str, tuple[int, str]] = {
    # access rule (workers.access)
    "no_consent": (403, "The vehicle has not consented to this product"),
    "no_order": (403, "No live order for this product"),
    "credits_exhausted": (402, "API credits exhausted"),
    "order_expired": (403, "The order has expired"),
    "order_refunded": (403, "The order was refunded to its buyer"),
    "product_inactive": (403, "The product is inactive"),
    "operator_inactive": (403, "The product's operator is not an active Operator"),
    "buyer_inactive": (403, "The buyer is not an active (whitelisted and staked) Consumer or Broker"),
    "cohort_too_small": (422, "The cohort is below the product's minimum"),
    "no_permission": (403, "The caller lacks the permission on this vehicle"),
    "signal_not_permitted": (403, "The signal is outside the product's permissions"),
    "aggregate_only": (403, "This order answers aggregates only"),
    "not_owner": (403, "Only the vehicle's owner may do this"),
    "wrong_kind": (409, "The order's product is not of the kind this endpoint serves"),
    "not_your_order": (403, "The order belongs to another account"),
    "too_many_vehicles": (422, "More vehicles than the order covers"),
    "refresh_too_fast": (422, "Faster than the product's refresh period"),
    "privacy_budget_exhausted": (409, "The order's differential-privacy budget is spent"),
    # owner privacy zones (workers.signals.zones)
    "too_many_zones": (409, "The vehicle already has as many privacy zones as allowed"),
    # authentication
    "unauthenticated": (401, "A bearer token is required"),
    "bad_token": (401, "The bearer token is invalid or expired"),
    "session_revoked": (401, "The session was signed out or revoked"),
    "bad_signature": (401, "The signature does not verify"),
    "replayed": (409, "The message or payload was already used"),
    "expired": (401, "The message has expired"),
    "wrong_domain": (401, "The message names another domain"),
    "wrong_chain": (401, "The message names another chain"),
    "bad_message": (400, "The message is malformed"),
    # devices (workers.oem.telemetry)
    "stale": (409, "The payload is stale"),
    "unpaired": (403, "The device is not paired with a vehicle"),
    "revoked": (403, "The device was revoked by its manufacturer"),
    "bad_payload": (400, "The payload is malformed"),
    "unknown_device": (404, "No such device on chain"),
    "oversized": (413, "The body is larger than allowed"),
    # onboarding (workers.oem.onboarding)
    "bad_state": (400, "The OAuth state is unknown, used, expired or for another connection"),
    "unknown_connection": (404, "No such OEM connection here"),
    "connection_inactive": (409, "The OEM connection is inactive on chain"),
    "oracle_mismatch": (503, "The connection's oracle is not this gateway's key"),
    "bad_vin": (502, "The automaker answered an invalid VIN"),
    "vehicle_exists": (409, "The VIN is already minted to someone else"),
    "vehicle_linked_to_other_owner": (409, "The vehicle is linked to another wallet"),
    # generic
    "not_found": (404, "Not found"),
    "bad_request": (400, "The request is invalid"),
    "rate_limited": (429, "Too many requests"),
    "not_ready": (503, "A dependency is not ready"),
    "index_stale": (503, "The index is behind the chain: access cannot be decided"),
    "upstream_error": (502, "An upstream service failed"),
}


class Problem(Exception):  # noqa: N818 - it is a problem document, not an "error"
    """A refusal with a stable reason code; the app answers it as problem+json."""

    def __init__(self, reason: str, detail: str, *, status: int | None = None, **extra: Any) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown problem reason {reason!r}")
        default_status, title = REASONS[reason]
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.status = status or default_status
        self.title = title
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": f"https://dimo.zone/problems/{self.reason}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "reason": self.reason,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    return Response(
        content=json.dumps(problem.body(instance)),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def log_refusal(request: Request, problem: Problem) -> None:
    log_refusal_of(request.method, request.url.path, getattr(request.state, "address", None), problem)


def log_refusal_of(method: str, path: str, caller: str | None, problem: Problem) -> None:
    """Every refusal is logged: what was asked, by whom, and the reason."""
    log.info(
        "refused %s %s: reason=%s status=%d caller=%s detail=%s",
        method,
        path,
        problem.reason,
        problem.status,
        caller,
        problem.detail,
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    log_refusal(request, exc)
    request.state.refusal_reason = exc.reason
    return problem_response(exc, request.url.path)


#: OpenAPI description of a problem answer, for `responses=` on routes.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "status", "detail", "reason"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "reason": {"type": "string", "enum": sorted(REASONS)},
        "instance": {"type": "string"},
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": "Refused (RFC 9457 problem details)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }
