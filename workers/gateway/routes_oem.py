"""Onboarding through the automaker (OAuth authorize, signed in, and callback → the
oracle's MintAttestation) and signed plug-in device telemetry: HTTP over the workers/oem
libraries."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from workers.gateway.deps import Caller, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.state import GatewayState
from workers.oem.errors import OemError
from workers.oem.onboarding import Onboarding, OnboardingError, OracleChain
from workers.oem.telemetry import (
    ChainDeviceRegistry,
    TelemetryRefused,
    TelemetryVerifier,
    ingest,
    telemetry_domain,
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


def _onboarding(state: GatewayState) -> Onboarding:
    def build() -> Onboarding:
        return Onboarding(
            state.settings, state.database, OracleChain(state.chain.vehicle_id, state.chain.chain_id)
        )

    return state.lazy("onboarding", build)


def _verifier(state: GatewayState) -> TelemetryVerifier:
    def build() -> TelemetryVerifier:
        chain = state.chain
        return TelemetryVerifier(
            telemetry_domain(chain.chain_id, chain.aftermarket_device.address),
            ChainDeviceRegistry(chain.aftermarket_device),
            max_age=state.settings.telemetry_max_age,
            max_future=state.settings.telemetry_max_future,
        )

    return state.lazy("telemetry_verifier", build)


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
    response_model=TelemetryAccepted,
    status_code=202,
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
def telemetry(
    request: Request,
    device_id: Annotated[int, Path(alias="deviceId", ge=0, le=UINT256_MAX)],
    body: Annotated[
        dict[str, Any],
        Body(description='{"sequence", "timestamp", "signals": {VSS name: value}, "signature"}'),
    ],
) -> TelemetryAccepted:
    """Accepts a payload signed (EIP-712 `Telemetry`) by the device key registered on chain,
    from a paired device, fresh, with a sequence above every earlier one; anything else is
    refused with its reason and stored nowhere."""
    state = state_of(request)
    verifier = _verifier(state)
    try:
        with write_session(state) as session:
            accepted = ingest(session, verifier, body, device_id)
    except TelemetryRefused as exc:
        raise Problem(exc.reason, exc.detail) from exc
    return TelemetryAccepted(
        payload_id=accepted.payload_id,
        vehicle_id=accepted.vehicle_id,
        device_id=accepted.device_id,
        sequence=accepted.sequence,
        signals=accepted.signals,
    )
