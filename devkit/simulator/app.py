"""The simulator's ASGI app: both OEM APIs, OAuth, the `/_sim` controls, a request log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from devkit.simulator import control, oauth, smartcar_api, tesla_api
from devkit.simulator.responses import api_of
from devkit.simulator.state import Client, SimState

#: The OAuth client the simulator knows unless told otherwise (the workers' defaults match).
DEFAULT_CLIENT_ID = "dimo-workers"
DEFAULT_CLIENT_SECRET = "sim-secret"
DEFAULT_FLEET_SIZE = 8


def create_app(
    fleet_size: int = DEFAULT_FLEET_SIZE,
    clients: list[Client] | None = None,
    seed: str = "dimo-sim",
) -> FastAPI:
    app = FastAPI(title="DIMO OEM cloud simulator", docs_url=None, redoc_url=None)
    app.state.sim = SimState(fleet_size, clients or [Client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)], seed)

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        api = api_of(request.url.path)
        if api != "control":
            app.state.sim.record(api, request.method, request.url.path, response.status_code)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for module in (oauth, smartcar_api, tesla_api, control):
        app.include_router(module.router)
    return app
