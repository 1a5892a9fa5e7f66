"""Onboarding through the automaker (OAuth authorize, signed in, and callback → the
oracle's MintAttestation) and signed plug-in device telemetry: HTTP over the workers/oem
libraries."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from workers.gateway.deps import Caller, state_of
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.state import GatewayState
from workers.oem.errors import OemError
from workers.oem.onboarding import Onboarding, OnboardingError, OracleChain
from workers.oem.telemetry import (
    Accepted,
    Envelope,
    TelemetryRefused,
    TelemetryVerifier,
    ingest_batch,
    parse_json,
    record,
    telemetry_verifier,
)
from workers.protocol import UINT256_MAX

log = logging.getLogger(__name__)

router = APIRouter(tags=["onboarding and devices"])


class AttestationView(BaseModel):
    """The oracle's MintAttestation for `VehicleId.mintWithAttestation` (or the existing
    vehicle, when the owner re-connected one already minted to them)."""

    to: str | None = None
    connection_id: int
    vin_hash: str | None = None
    #: The oracle's unordered nonce the attestation was signed with (passed to the mint).
    nonce: int | None = None
    deadline: int | None = None
    signature: str | None = None
    vehicle_id: int | None = None


class AuthorizeView(BaseModel):
    """Where to send the owner's browser to consent at the automaker."""

    authorize_url: str
    expires_at: int = Field(description="Unix seconds: the consent must come back before then")


class TelemetryAccepted(BaseModel):
    payload_id: int
    vehicle_id: int
    device_id: int
    sequence: int
    signals: int


class TelemetryOutcome(BaseModel):
    """One envelope of a list: stored (its payload id…) or refused (its reason and detail)."""

    accepted: bool
    device_id: int | None = None
    sequence: int | None = None
    payload_id: int | None = None
    vehicle_id: int | None = None
    signals: int | None = None
    reason: str | None = None
    detail: str | None = None


class TelemetryBatchAccepted(BaseModel):
    """What a list of envelopes came to, one outcome per envelope in order."""

    accepted: int
    refused: int
    results: list[TelemetryOutcome]


_TELEMETRY_BODY = {
    "description": 'One envelope {"sequence", "timestamp", "signals": {VSS name: value}, "signature"} '
    "or a JSON list of them (TELEMETRY_MAX_ENVELOPES at most), TELEMETRY_MAX_BODY_BYTES at most",
    "required": True,
    "content": {"application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}}},
}


def _onboarding(state: GatewayState) -> Onboarding:
    def build() -> Onboarding:
        return Onboarding(
            state.settings, state.database, OracleChain(state.chain.vehicle_id, state.chain.chain_id)
        )

    return state.lazy("onboarding", build)


def _verifier(state: GatewayState) -> TelemetryVerifier:
    return state.lazy("telemetry_verifier", lambda: telemetry_verifier(state.settings, state.chain))


async def telemetry_body(request: Request) -> bytes:
    """The request body, read no further than TELEMETRY_MAX_BODY_BYTES (413 `oversized`)."""
    limit = state_of(request).settings.telemetry_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem("oversized", f"the body is {declared} bytes, more than the {limit} allowed")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem("oversized", f"the body is more than the {limit} bytes allowed")
    return bytes(body)


def _outcome(outcome: Accepted | TelemetryRefused, envelope: Envelope | TelemetryRefused) -> TelemetryOutcome:
    if isinstance(outcome, Accepted):
        return TelemetryOutcome(
            accepted=True,
            device_id=outcome.device_id,
            sequence=outcome.sequence,
            payload_id=outcome.payload_id,
            vehicle_id=outcome.vehicle_id,
            signals=outcome.signals,
        )
    known = envelope if isinstance(envelope, Envelope) else None
    return TelemetryOutcome(
        accepted=False,
        device_id=known and known.device_id,
        sequence=known and known.sequence,
        reason=outcome.reason,
        detail=outcome.detail,
    )


def _onboarding_problem(exc: OnboardingError | OemError) -> Problem:
    if isinstance(exc, OnboardingError):
        return Problem(exc.reason, exc.detail)
    return Problem("upstream_error", f"the automaker failed: {exc}")


@router.get(
    "/v1/oem/{connectionId}/authorize",
    response_model=AuthorizeView,
    responses=problem_responses(401, 404, 422, 429),
)
def authorize(
    request: Request,
    caller: Caller,
    connection_id: Annotated[int, Path(alias="connectionId", ge=0, le=UINT256_MAX)],
) -> AuthorizeView:
    """Starts onboarding for the signed-in owner: a single-use `state` bound to this bearer
    session (and, where the automaker supports it, a PKCE verifier kept server-side), and the
    automaker's consent page to send the owner's browser to. The callback mints to the
    signed-in address and nobody else."""
    state = state_of(request)
    try:
        started = _onboarding(state).begin(connection_id, caller.address, caller.session_id)
    except OnboardingError as exc:
        raise _onboarding_problem(exc) from exc
    return AuthorizeView(authorize_url=started.url, expires_at=started.expires_at)


@router.get(
    "/v1/oem/{connectionId}/callback",
    response_model=AttestationView,
    responses=problem_responses(400, 401, 404, 409, 422, 502, 503),
)
def callback(
    request: Request,
    connection_id: Annotated[int, Path(alias="connectionId", ge=0, le=UINT256_MAX)],
    code: Annotated[str, Query(min_length=1, max_length=2048)],
    state: Annotated[str, Query(min_length=1, max_length=256)],
) -> AttestationView | RedirectResponse:
    """The automaker's redirect (the owner's browser, without a bearer token): the state is
    consumed once and names the signed-in owner who started it, whose session must still be
    live; the code (with the PKCE verifier) becomes tokens (kept encrypted), the VIN is read,
    and the oracle's MintAttestation to that owner is answered. Another wallet's link of the
    car is never silently replaced (`vehicle_linked_to_other_owner`). A browser (Accept:
    text/html) is sent on to the web app with the attestation, or the refusal, in the URL's
    fragment."""
    gateway = state_of(request)
    to_app = "text/html" in request.headers.get("accept", "")
    try:
        done = _onboarding(gateway).complete(connection_id, code, state)
    except (OnboardingError, OemError) as exc:
        problem = _onboarding_problem(exc)
        if to_app:
            return _back_to_app({"error": problem.reason, "detail": problem.detail})
        raise problem from exc
    if done.attestation is None:
        answer = AttestationView(connection_id=connection_id, vehicle_id=done.vehicle_id)
    else:
        answer = AttestationView(**done.attestation.to_json())
    if to_app:
        return _back_to_app({k: str(v) for k, v in answer.model_dump(exclude_none=True).items()})
    return answer


def _back_to_app(fields: dict[str, str]) -> RedirectResponse:
    """A browser that came back from the automaker lands in the web app (/app), which reads
    the attestation (or the refusal) from the fragment and sends the mint from the wallet."""
    return RedirectResponse(f"/app/#/owner/connected?{urlencode(fields)}", status_code=303)


@router.post(
    "/v1/devices/{deviceId}/telemetry",
    response_model=TelemetryAccepted | TelemetryBatchAccepted,
    status_code=202,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    openapi_extra={"requestBody": _TELEMETRY_BODY},
)
def telemetry(
    request: Request,
    device_id: Annotated[int, Path(alias="deviceId", ge=0, le=UINT256_MAX)],
    raw: Annotated[bytes, Depends(telemetry_body)],
) -> TelemetryAccepted | TelemetryBatchAccepted:
    """Accepts payloads signed (EIP-712 `Telemetry`) by the device key the index holds, from
    a paired device, fresh, with a sequence above every earlier one; anything else is refused
    with its reason and stored nowhere. For devices that cannot speak MQTT (the ingest
    process takes the same envelopes on `dimo/devices/{deviceId}/telemetry`).

    One envelope: 202 with the stored payload, or the refusal as a problem document. A list:
    verified and stored together in one transaction, 202 with one outcome per envelope."""
    state = state_of(request)
    settings = state.settings
    try:
        body = parse_json(raw, settings.telemetry_max_body_bytes)
    except TelemetryRefused as exc:
        record([exc], "http")
        raise Problem(exc.reason, exc.detail) from exc
    items: list[Any] = body if isinstance(body, list) else [body]
    if not 0 < len(items) <= settings.telemetry_max_envelopes:
        raise Problem("bad_payload", f"a list holds 1..{settings.telemetry_max_envelopes} envelopes")
    envelopes: list[Envelope | TelemetryRefused] = []
    for item in items:
        try:
            envelopes.append(Envelope.parse(item, device_id))
        except TelemetryRefused as exc:
            envelopes.append(exc)
    outcomes = ingest_batch(state.database, _verifier(state), envelopes)
    record(outcomes, "http")
    if isinstance(body, list):
        results = [_outcome(o, e) for o, e in zip(outcomes, envelopes, strict=True)]
        stored = sum(r.accepted for r in results)
        return TelemetryBatchAccepted(accepted=stored, refused=len(results) - stored, results=results)
    (outcome,) = outcomes
    if isinstance(outcome, TelemetryRefused):
        raise Problem(outcome.reason, outcome.detail)
    return TelemetryAccepted(
        payload_id=outcome.payload_id,
        vehicle_id=outcome.vehicle_id,
        device_id=outcome.device_id,
        sequence=outcome.sequence,
        signals=outcome.signals,
    )
