"""`/_sim/...`: how tests and the demo drive the simulator (DESIGN.md §4 names
`GET /_sim/vehicles` and `POST /_sim/consent`; the rest are extensions)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from devkit.simulator.fleet import snapshot
from devkit.simulator.oauth import requested_challenge
from devkit.simulator.responses import sim
from devkit.simulator.state import FaultApi, FaultKind, MalformedMode, RateScope, RetryAfterForm

router = APIRouter(prefix="/_sim")


class ConsentIn(BaseModel):
    vin: str
    redirect_uri: str
    state: str = ""
    client_id: str | None = None
    #: PKCE, as the authorize URL carried it (S256 only).
    code_challenge: str | None = None
    code_challenge_method: str | None = None


class ConfigIn(BaseModel):
    access_token_ttl: float | None = Field(default=None, gt=0)
    refresh_token_ttl: float | None = Field(default=None, gt=0)
    rate_limit: int | None = Field(default=None, ge=0)
    clear_rate_limit: bool = False
    rate_window: float | None = Field(default=None, gt=0)
    rate_retry_after: int | None = Field(default=None, ge=0)
    rate_retry_after_form: RetryAfterForm | None = None
    wake_delay: float | None = Field(default=None, ge=0)
    stay_awake: float | None = Field(default=None, gt=0)


class FaultIn(BaseModel):
    kind: FaultKind
    api: FaultApi = "any"
    count: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0)
    retry_after: int = Field(default=1, ge=0)
    status: int = Field(default=503, ge=500, le=599)
    mode: MalformedMode = "truncated"
    retry_after_form: RetryAfterForm = "seconds"
    scope: RateScope = "vehicle"


class ClockIn(BaseModel):
    advance: float = Field(ge=0)


class ExpireIn(BaseModel):
    vin: str | None = None


@router.get("/vehicles")
async def vehicles(request: Request) -> list[dict[str, Any]]:
    return [s.public() for s in sim(request).specs()]


@router.get("/vehicles/{vin}")
async def vehicle(vin: str, request: Request) -> dict[str, Any]:
    state = sim(request)
    found = state.vehicle(vin)
    if found is None:
        raise HTTPException(404, f"no vehicle {vin}")
    now = state.now()
    return {
        **found.spec.public(),
        "locked": found.locked,
        "remote_started": found.remote_started(now),
        "online": found.online(now),
        "commands": [{"at": at, "command": c} for at, c in found.commands],
        "state": asdict(snapshot(found.spec, now)),
    }


@router.post("/vehicles/{vin}/sleep")
async def sleep(vin: str, request: Request) -> dict[str, Any]:
    found = sim(request).vehicle(vin)
    if found is None:
        raise HTTPException(404, f"no vehicle {vin}")
    found.awake_from = found.awake_until = 0.0
    return {"vin": found.spec.vin, "online": False}


@router.post("/consent")
async def consent(body: ConsentIn, request: Request) -> dict[str, str]:
    """Stands in for the person who clicks "allow" on the consent page."""
    state = sim(request)
    found = state.vehicle(body.vin)
    if found is None:
        raise HTTPException(404, f"no vehicle {body.vin}")
    challenge, refused = requested_challenge(body.model_dump(exclude_none=True))
    if refused:
        raise HTTPException(400, refused)
    code = state.issue_code(found.spec.vin, body.redirect_uri, body.client_id, challenge)
    sep = "&" if "?" in body.redirect_uri else "?"
    return {"code": code.code, "redirect_url": f"{body.redirect_uri}{sep}code={code.code}&state={body.state}"}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return asdict(sim(request).config)


@router.post("/config")
async def set_config(body: ConfigIn, request: Request) -> dict[str, Any]:
    config = sim(request).config
    for name, value in body.model_dump(exclude={"clear_rate_limit"}).items():
        if value is not None:
            setattr(config, name, value)
    if body.clear_rate_limit:
        config.rate_limit = None
    return asdict(config)


@router.get("/faults")
async def faults(request: Request) -> list[dict[str, Any]]:
    state = sim(request)
    return [f.public() for f in state.faults if f.live(state.now())]


@router.post("/faults")
async def add_fault(body: FaultIn, request: Request) -> dict[str, Any]:
    return sim(request).add_fault(body.model_dump()).public()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, int]:
    state = sim(request)
    cleared = len(state.faults)
    state.faults.clear()
    return {"cleared": cleared}


@router.get("/clock")
async def clock(request: Request) -> dict[str, float]:
    state = sim(request)
    return {"now": state.now(), "offset": state.offset}


@router.post("/clock")
async def advance(body: ClockIn, request: Request) -> dict[str, float]:
    state = sim(request)
    return {"now": state.advance(body.advance), "offset": state.offset}


@router.post("/tokens/expire")
async def expire_tokens(body: ExpireIn, request: Request) -> dict[str, int]:
    return {"expired": sim(request).expire_tokens(body.vin)}


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    return sim(request).stats.public()


@router.get("/requests")
async def requests_log(request: Request, since: float = 0.0) -> list[dict[str, Any]]:
    return [entry for entry in sim(request).log if entry["at"] >= since]


@router.post("/reset")
async def reset(request: Request) -> dict[str, int]:
    state = sim(request)
    state.reset()
    return {"vehicles": len(state.vehicles)}
