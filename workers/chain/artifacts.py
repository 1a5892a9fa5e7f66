"""The compiled contracts as the workers read them: ABIs and creation bytecode from ape's
build output (`.build/__local__.json`), canonical ABI types, and revert data decoded by the
project's custom errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from workers.config import PROJECT_ROOT

ARTIFACTS_FILE = PROJECT_ROOT / ".build" / "__local__.json"


class ArtifactError(RuntimeError):
    """The compiled artifacts are missing or do not contain a contract."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str

    def events(self) -> list[dict[str, Any]]:
        return [item for item in self.abi if item.get("type") == "event"]


# The build output is read once per process and path: it changes only with the code.
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


def abi_type(item: dict[str, Any]) -> str:
    """The canonical ABI type string of an ABI input (tuples spelled out)."""
    kind = item["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[len("tuple") :]
    return kind


# --- revert reasons -------------------------------------------------------------------------


@cache
def _error_selectors(path: Path) -> dict[bytes, tuple[str, list[str]]]:
    selectors: dict[bytes, tuple[str, list[str]]] = {
        bytes.fromhex("08c379a0"): ("Error", ["string"]),
        bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
    }
    for contract_type in _artifact_index(path).values():
        for item in contract_type.get("abi", []):
            if item.get("type") == "error":
                types = [abi_type(i) for i in item.get("inputs", [])]
                signature = f"{item['name']}({','.join(types)})"
                selectors[keccak(text=signature)[:4]] = (item["name"], types)
    return selectors


def decode_revert(data: Any, path: Path = ARTIFACTS_FILE) -> str:
    """`Name(arg, …)` for revert data of any project error, else the raw data."""
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return f"reverted without data ({data!r})"
    raw = bytes.fromhex(data[2:])
    known = _error_selectors(path).get(raw[:4])
    if known is None:
        return f"unknown error {data[:10]} ({data})"
    name, types = known
    try:
        values = abi_decode(types, raw[4:])
    except Exception:
        return f"{name}(<undecodable {data}>)"
    return f"{name}({', '.join(_fmt(v) for v in values)})"


def _fmt(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)
