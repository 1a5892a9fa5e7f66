"""The web app (webapp/, built by `make setup` into WEBAPP_DIR) served under /app, and
what it needs to reach the chain through the browser's wallet: GET /app/config.json (the
chain id, the RPC URL for reads, the deployment's addresses and the ABIs of the contracts it
calls). A path under /app that is not a built file answers index.html (the app routes in
the browser); an app that was never built answers 503 `not_ready`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from workers.chain.artifacts import load_artifact
from workers.gateway.deps import state_of
from workers.gateway.problems import Problem
from workers.gateway.routes_auth import chain_id

router = APIRouter(tags=["web app"], include_in_schema=False)

#: The contracts the app calls through the wallet (their ABIs go to the browser).
APP_CONTRACTS = ("VehicleId", "DataProducts", "Marketplace", "Staking", "DimoToken")


def built_file(root: Path, path: str) -> Path:
    """The built file `path` names under `root`, or index.html (routes of the app); the
    refusal when the app is not built. Never a file outside `root`."""
    index = root / "index.html"
    if not index.is_file():
        raise Problem("not_ready", f"the web app is not built ({index} is missing): run `make setup`")
    wanted = (root / path).resolve()
    if path and wanted.is_file() and wanted.is_relative_to(root.resolve()):
        return wanted
    return index


@router.get("/app/config.json")
def app_config(request: Request) -> dict[str, Any]:
    """What the app needs to talk to the chain: chain id, RPC URL, addresses and ABIs."""
    state = state_of(request)
    deployed_on = chain_id(state)  # outside `lazy`: it is built lazily too

    def build() -> dict[str, Any]:
        chain = state.chain
        return {
            "chain_id": deployed_on,
            "rpc_url": state.settings.webapp_rpc_url or state.settings.rpc_url,
            "contracts": {
                name: {"address": chain.manifest.address(name), "abi": load_artifact(name).abi}
                for name in APP_CONTRACTS
            },
        }

    try:
        return state.lazy("webapp_config", build)
    except Problem:
        raise
    except Exception as exc:  # no node, or no deployment on it yet
        raise Problem("not_ready", f"the chain or its deployment cannot be read: {exc}") from exc


@router.get("/app")
def app_root() -> Response:
    return RedirectResponse("/app/", status_code=308)


@router.get("/app/{path:path}")
def app_file(request: Request, path: str) -> Response:
    """A built asset, or the app's page for any of its routes."""
    found = built_file(state_of(request).settings.webapp_dir, path)
    # Hashed assets never change; the page is re-read so a rebuild shows at once.
    immutable = found.parent.name == "assets"
    headers = {"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"}
    return FileResponse(found, headers=headers)
