"""The gateway's ASGI app (FastAPI): buyers and owners reach the data here, and only as far
as their on-chain rights allow (DESIGN.md §4).

    uvicorn --factory workers.gateway.app:create_app      or      python -m workers.gateway
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.access.facts import StakingCheck
from workers.config import Settings, get_settings
from workers.gateway import (
    routes_auth,
    routes_catalog,
    routes_members,
    routes_oem,
    routes_orders,
    routes_signals,
    routes_vehicles,
    routes_zones,
    webapp,
)
from workers.gateway.deps import fresh_index
from workers.gateway.fastpath import MeteredFastPath
from workers.gateway.problems import Problem, handle_problem, log_refusal, problem_response
from workers.gateway.state import GatewayState
from workers.observability import RequestIdMiddleware, configure_logging
from workers.runtime import Runtime

log = logging.getLogger(__name__)

API_DESCRIPTION = """The DIMO data gateway. Sign in with Ethereum (POST /auth/nonce, sign the
message, POST /auth/verify), then send `Authorization: Bearer <token>`. Every refusal is an
RFC 9457 problem document with a stable `reason`; every endpoint serving vehicle data answers
503 `index_stale` while the index is behind the chain."""

#: Routers that serve what the access rule guards (signals, streams, datasets, commands,
#: consents, claims): included behind `fresh_index`, so a stale index serves nothing.
SERVING = (routes_signals, routes_orders, routes_vehicles, routes_zones, routes_members)
#: Routers that serve no vehicle data: sign-in, the public catalogue, onboarding, devices and
#: the web app's files.
OPEN = (routes_auth, routes_catalog, routes_oem, webapp)


class MetricsMiddleware:
    """Counts every answer and times it, labelled by route template (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.metrics = state.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
            reason = scope.get("state", {}).get("refusal_reason")
            if reason:
                self.metrics.refusals.labels(reason).inc()


async def _validation_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in exc.errors()
    )
    problem = Problem("bad_request", errors or "the request is invalid", status=422)
    log_refusal(request, problem)
    request.state.refusal_reason = problem.reason
    return problem_response(problem, request.url.path)


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    reason = "not_found" if exc.status_code == 404 else "bad_request"
    problem = Problem(reason, str(exc.detail), status=exc.status_code)
    if exc.headers:
        problem.headers.update(exc.headers)
    request.state.refusal_reason = problem.reason
    return problem_response(problem, request.url.path)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {
            "title": "Internal server error",
            "status": 500,
            "detail": "the gateway failed",
            "reason": "internal",
        },
        status_code=500,
        media_type="application/problem+json",
    )


def create_app(
    settings: Settings | None = None,
    *,
    staking_check: StakingCheck | None = None,
) -> FastAPI:
    """A gateway app on its own runtime for `settings` (default: the environment's);
    `staking_check` answers operator and buyer activity instead of `Staking.isActive` (tests
    without a Staking)."""
    settings = settings or get_settings()
    configure_logging(settings)
    state = GatewayState(Runtime(settings), staking_check=staking_check)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()  # the stream hub's feed subscriber, the database's pooled connections

    app = FastAPI(
        title="DIMO data gateway",
        lifespan=lifespan,
        version="1.0.0",
        description=API_DESCRIPTION,
        exception_handlers={
            Problem: handle_problem,
            RequestValidationError: _validation_problem,
            StarletteHTTPException: _http_problem,
            Exception: _server_error,
        },
    )
    app.state.gateway = state

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness (the process answers and its database is reachable, 200) and the index's
        health: `status` is `index_stale` while serving endpoints answer 503."""
        from sqlalchemy import text  # noqa: PLC0415

        with state.database.engine.connect() as conn:
            conn.execute(text("select 1"))
        index = state.index_health()
        return {"status": "ok" if index.fresh else "index_stale", "index": index.as_dict()}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def metrics() -> Response:
        """Prometheus exposition: request counters, latency histograms, refusals by reason
        (of every gateway process, in multiprocess mode: PROMETHEUS_MULTIPROC_DIR)."""
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    for module in SERVING:
        app.include_router(module.router, dependencies=[Depends(fresh_index)])
    for module in OPEN:
        app.include_router(module.router)
    app.add_middleware(RequestIdMiddleware)  # the fast path binds and echoes its own
    app.add_middleware(MeteredFastPath, state=state)
    app.add_middleware(MetricsMiddleware, state=state)
    if state.settings.cors_origins:
        # Outermost, so preflights and the fast path's answers carry the headers too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    return app
