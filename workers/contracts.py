"""Compiled contract artifacts and deployment manifests: the two files that tie the
off-chain code to the chain. ABIs come from ape's build output (`.build/__local__.json`);
addresses from `deployments/<network>.json` (DESIGN.md §2)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_FILE = PROJECT_ROOT / ".build" / "__local__.json"
DEPLOYMENTS_DIR = PROJECT_ROOT / "deployments"

ANVIL_CHAIN_ID = 31337


class ArtifactError(RuntimeError):
    """The compiled artifacts are missing or do not contain a contract."""


class ManifestError(RuntimeError):
    """A deployment manifest is missing, malformed or does not match the chain."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str

    def events(self) -> list[dict[str, Any]]:
        return [item for item in self.abi if item.get("type") == "event"]


@cache
def _artifact_index(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ArtifactError(f"{path} not found: compile the contracts first (`make build` or `ape compile`)")
    return json.loads(path.read_text())["contractTypes"]


def load_artifact(name: str, path: Path = ARTIFACTS_FILE) -> Artifact:
    """The ABI and creation bytecode of contract `name` from ape's build output."""
    index = _artifact_index(path)
    if name not in index:
        raise ArtifactError(f"contract {name!r} is not in {path}; known: {sorted(index)}")
    contract_type = index[name]
    bytecode = (contract_type.get("deploymentBytecode") or {}).get("bytecode") or "0x"
    return Artifact(name=name, abi=contract_type["abi"], bytecode=bytecode)


def network_name(chain_id: int) -> str:
    """`local` for anvil (DESIGN.md §5), `chain-<id>` otherwise."""
    return "local" if chain_id == ANVIL_CHAIN_ID else f"chain-{chain_id}"


def manifest_path(network: str, directory: Path = DEPLOYMENTS_DIR) -> Path:
    return directory / f"{network}.json"


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
