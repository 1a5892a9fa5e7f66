"""Request-scoped helpers shared by the routes: the index's freshness (fail closed), the
caller's identity (bearer token + rate limit) and database sessions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from workers.gateway.auth import Identity
from workers.gateway.problems import Problem
from workers.gateway.state import GatewayState

#: An account address in a route's path: 0x and 40 hex digits, either case.
ADDRESS_PATTERN = "^0x[0-9a-fA-F]{40}$"
AddressPath = Annotated[str, Path(pattern=ADDRESS_PATTERN, description="an account address")]

bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from POST /auth/verify (Sign-In with Ethereum)"
)


def state_of(request: Request) -> GatewayState:
    return request.app.state.gateway


def index_refusal(state: GatewayState) -> Problem | None:
    """The one rule of fail-closed serving: no data goes out while the index is stale or
    halted (workers/indexer/health.py). None when the index is fresh."""
    current = state.index_health()
    if current.fresh:
        return None
    problem = Problem("index_stale", current.detail)
    problem.headers["Retry-After"] = str(max(1, math.ceil(state.settings.sync_interval)))
    return problem


def require_fresh_index(state: GatewayState) -> None:
    problem = index_refusal(state)
    if problem is not None:
        raise problem


def fresh_index(request: Request) -> None:
    """The dependency every serving router is included with (workers/gateway/app.py)."""
    require_fresh_index(state_of(request))


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Identity:
    """The bearer token's identity; also takes one token of its rate-limit bucket."""
    identity = identify(state_of(request), None if credentials is None else credentials.credentials)
    request.state.address = identity.address
    return identity


def identify(state: GatewayState, token: str | None, *, check_session: bool = True) -> Identity:
    """The identity a bearer token speaks for, after taking one token of its rate-limit bucket
    and checking that its session was not signed out or revoked (`check_session=False`: the
    caller checks it, as the metered call's spend does, in the same statement)."""
    if token is None:
        raise Problem(
            "unauthenticated", "send Authorization: Bearer <token> (POST /auth/nonce, then /auth/verify)"
        )
    identity = state.identity_of(token)
    wait = state.limiter.admit(identity.session_id)
    if wait > 0:
        problem = Problem(
            "rate_limited", f"over {state.settings.rate_limit_per_second:g} requests/s for this token"
        )
        problem.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        raise problem
    if check_session:
        state.sessions.check(identity)
    return identity


Caller = Annotated[Identity, Depends(authenticate)]


@contextmanager
def read_session(state: GatewayState) -> Iterator[Session]:
    """A read-only transaction (never blocks writers)."""
    with state.database.session(read_only=True) as session:
        yield session


@contextmanager
def write_session(state: GatewayState) -> Iterator[Session]:
    with state.database.session() as session:
        yield session
