"""POST /auth/nonce and POST /auth/verify: Sign-In with Ethereum (EIP-4361); POST
/auth/logout and POST /auth/revoke-all: ending this token's session, or every session of
the address, at once in every gateway process."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from workers.gateway.auth import (
    SignInRequest,
    encode_token,
    issue_nonce,
    revoke_all_sessions,
    revoke_session,
    verify_login,
)
from workers.gateway.deps import Caller, state_of, write_session
from workers.gateway.problems import Problem, problem_responses
from workers.gateway.state import GatewayState

router = APIRouter(prefix="/auth", tags=["auth"])


class NonceRequest(BaseModel):
    address: str = Field(description="The wallet address that will sign in", examples=["0x" + "ab" * 20])
    domain: str | None = Field(
        default=None,
        description="The dApp's origin authority (host[:port]), one of SIWE_DOMAINS; default: the first",
        examples=["app.example.com"],
    )
    uri: str | None = Field(
        default=None, max_length=512, description="The resource signed in to; default: this gateway's URL"
    )
    expires_in: int | None = Field(
        default=None, ge=1, description="Seconds the session may last; default and cap: SESSION_TTL"
    )


class NonceAnswer(BaseModel):
    nonce: str
    message: str = Field(description="The EIP-4361 message to sign (personal_sign)")


class VerifyRequest(BaseModel):
    message: str
    signature: str = Field(description="0x-hex signature of the message")


class VerifyAnswer(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`")
    address: str
    expires_at: int = Field(description="Unix seconds")


class RevokedAnswer(BaseModel):
    address: str
    revoked: int = Field(description="Sessions this call ended (0: already ended)")


def chain_id(state: GatewayState) -> int:
    """The chain SIWE messages name: SIWE_CHAIN_ID, or the deployment's (read once)."""
    configured = state.settings.siwe_chain_id
    if configured is not None:
        return configured
    try:
        return state.lazy("siwe_chain_id", lambda: state.chain.chain_id)
    except Exception as exc:  # the node or the deployment manifest is not there yet
        raise Problem("not_ready", f"the chain at RPC_URL cannot be read: {exc}") from exc


def _limit_client(request: Request) -> None:
    """Sign-in has no token yet: it is limited per client address."""
    state = state_of(request)
    client = request.client.host if request.client else "unknown"
    wait = state.auth_limiter.admit(f"client:{client}")
    if wait > 0:
        problem = Problem(
            "rate_limited", f"over {state.settings.auth_rate_limit_per_second:g} sign-ins/s from {client}"
        )
        problem.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        raise problem


@router.post("/nonce", response_model=NonceAnswer, responses=problem_responses(400, 422, 429))
def nonce(body: NonceRequest, request: Request) -> NonceAnswer:
    """A single-use nonce and the EIP-4361 message naming it, to sign with the wallet: for
    the dApp's `domain` (one of SIWE_DOMAINS), the deployment's chain id, and an Expiration
    Time `expires_in` seconds ahead (at most SESSION_TTL). A dApp may also build its own
    message around the nonce (the `siwe` package): /auth/verify checks the same things."""
    state = state_of(request)
    _limit_client(request)
    settings = state.settings
    domain = body.domain or settings.siwe_domains[0]
    asked = SignInRequest(
        domain=domain,
        uri=body.uri or str(request.base_url).rstrip("/"),
        chain_id=chain_id(state),
        expires_in=body.expires_in or settings.session_ttl,
    )
    with write_session(state) as session:
        value, message = issue_nonce(session, settings, body.address, asked)
    return NonceAnswer(nonce=value, message=message)


@router.post("/verify", response_model=VerifyAnswer, responses=problem_responses(400, 401, 409, 422, 429))
def verify(body: VerifyRequest, request: Request) -> VerifyAnswer:
    """Checks the signed message (an allowed domain, the deployment's chain id, nonce,
    expiry, signature) and answers a bearer token that ends at the message's Expiration Time
    (never later than SESSION_TTL). The nonce is consumed: the same message never signs in twice."""
    state = state_of(request)
    _limit_client(request)
    with write_session(state) as session:
        identity = verify_login(session, state.settings, body.message, body.signature, chain_id(state))
    request.state.address = identity.address
    return VerifyAnswer(
        token=encode_token(identity, state.token_secret),
        address=identity.address,
        expires_at=identity.expires_at,
    )


@router.post("/logout", response_model=RevokedAnswer, responses=problem_responses(401, 429))
def logout(request: Request, caller: Caller) -> RevokedAnswer:
    """Signs this token out: its session is revoked, and every gateway process refuses the
    token from its next request on (`session_revoked`). Other tokens of the address stay."""
    state = state_of(request)
    with write_session(state) as session:
        revoked = revoke_session(session, caller.session_id)
    return RevokedAnswer(address=caller.address, revoked=revoked)


@router.post("/revoke-all", response_model=RevokedAnswer, responses=problem_responses(401, 429))
def revoke_all(request: Request, caller: Caller) -> RevokedAnswer:
    """Revokes every session of the caller's address, this token's included (a lost device,
    a leaked token): all of them are refused at once, everywhere. Signing in again works."""
    state = state_of(request)
    with write_session(state) as session:
        revoked = revoke_all_sessions(session, caller.address)
    return RevokedAnswer(address=caller.address, revoked=revoked)
