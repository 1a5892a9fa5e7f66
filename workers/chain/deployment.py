"""The deployment the workers serve: its manifest (`deployments/<network>.json`, DESIGN.md §2),
checked against the chain behind RPC_URL. `connect` is the one way to a chain handle."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from web3 import Web3

from workers.chain.rpc import Rpc, with_rpc_retries
from workers.chain.views import Chain
from workers.config import DEPLOYMENTS_DIR, Settings

ANVIL_CHAIN_ID = 31337


class ManifestError(RuntimeError):
    """A deployment manifest is missing, malformed or does not match the chain."""


class DeploymentMismatchError(ManifestError):
    """The deployment manifest does not describe the chain the RPC is connected to."""


def network_name(chain_id: int) -> str:
    """`local` for anvil (DESIGN.md §5), `chain-<id>` otherwise."""
    return "local" if chain_id == ANVIL_CHAIN_ID else f"chain-{chain_id}"


def manifest_path(network: str, directory: Path = DEPLOYMENTS_DIR) -> Path:
    return directory / f"{network}.json"


def manifest_file(settings: Settings, chain_id: int) -> Path:
    """DEPLOYMENT_FILE, or deployments/<network>.json beside the code for `chain_id`."""
    return settings.deployment_file or manifest_path(network_name(chain_id))


@dataclass
class Manifest:
    """`deployments/<network>.json`: {"chain_id", "block", "contracts": {name: address}, ...}."""

    chain_id: int
    block: int
    contracts: dict[str, str]
    deployer: str = ""
    roles: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def address(self, name: str) -> str:
        if name not in self.contracts:
            raise ManifestError(f"the deployment has no {name!r}; it has {sorted(self.contracts)}")
        return self.contracts[name]

    def to_json(self) -> str:
        body = {
            "chain_id": self.chain_id,
            "block": self.block,
            "contracts": self.contracts,
            "deployer": self.deployer,
            "roles": self.roles,
        }
        return json.dumps(body, indent=2) + "\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        if not path.exists():
            raise ManifestError(f"{path} not found: deploy first (`make deploy`)")
        try:
            body = json.loads(path.read_text())
            return cls(
                chain_id=int(body["chain_id"]),
                block=int(body["block"]),
                contracts={str(k): str(v) for k, v in body["contracts"].items()},
                deployer=str(body.get("deployer", "")),
                roles=body.get("roles", {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{path} is not a deployment manifest: {exc}") from exc


def verify_deployment(rpc: Rpc, manifest: Manifest, path: Path) -> int:
    """Checks that the chain behind `rpc` holds the deployment in `manifest`; its chain id.

    Raises DeploymentMismatchError naming every difference: the chain id, and each contract
    without code at its address."""
    chain_id = with_rpc_retries(rpc.chain_id)
    if chain_id != manifest.chain_id:
        raise DeploymentMismatchError(
            f"{path} is for chain {manifest.chain_id}, but {rpc.url} is chain {chain_id}: "
            "point DEPLOYMENT_FILE at this chain's manifest or RPC_URL at the manifest's chain"
        )
    names = sorted(manifest.contracts)
    codes = with_rpc_retries(rpc.batch, [("eth_getCode", [manifest.contracts[n], "latest"]) for n in names])
    missing = [
        f"{n} at {manifest.contracts[n]}"
        for n, code in zip(names, codes, strict=True)
        if code in (None, "0x", "")
    ]
    if missing:
        raise DeploymentMismatchError(
            f"{path} does not match chain {chain_id} at {rpc.url}: no contract code for "
            + ", ".join(missing)
            + " (a different chain or a reset node: redeploy with `make deploy` or fix DEPLOYMENT_FILE)"
        )
    head = with_rpc_retries(rpc.block_number)
    if manifest.block > head:
        raise DeploymentMismatchError(
            f"{path} says the deployment starts at block {manifest.block}, but the chain's head is {head}"
        )
    return chain_id


def connect(settings: Settings) -> Chain:
    """Connects to RPC_URL and loads and verifies the deployment manifest against it."""
    rpc = Rpc(settings.rpc_url, settings.rpc_timeout)
    chain_id = with_rpc_retries(rpc.chain_id)
    path = manifest_file(settings, chain_id)
    manifest = Manifest.read(path)
    verify_deployment(rpc, manifest, path)
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.rpc_timeout}))
    return Chain(rpc=rpc, w3=w3, manifest=manifest, manifest_file=path, chain_id=chain_id)
