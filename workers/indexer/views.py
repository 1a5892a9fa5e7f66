"""Views read at an event's own block, for events that do not carry all they announce
(DataProducts' TermsUpdated carries the version, not the terms; BundleCreated the components,
not their monthly quantities).

The framework, not the handler, makes these calls: before a batch is applied it reads every
needed view with `eth_call` pinned to the event's block hash (EIP-1898), so the answer is the
state that block left, on that very fork; the handler gets it as `event.view`. A node that
cannot answer for old blocks (not an archive node) makes the backfill stop with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from workers.chain import RpcError, abi_type
from workers.contracts import Manifest, load_artifact
from workers.indexer.decode import Event, _to_python


@dataclass(frozen=True)
class ViewCall:
    """`contract.function(*args)` read at the event's block."""

    contract: str
    function: str
    args: tuple[Any, ...]


ViewSpec = Callable[[Event], ViewCall]

_views: dict[tuple[str, str], ViewSpec] = {}


def read_view(contract: str, event: str) -> Callable[[ViewSpec], ViewSpec]:
    """Registers which view `contract`'s `event` needs, given the event."""

    def register(fn: ViewSpec) -> ViewSpec:
        _views[(contract, event)] = fn
        return fn

    return register


def view_for(event: Event) -> ViewCall | None:
    spec = _views.get((event.contract, event.name))
    return spec(event) if spec is not None else None


@dataclass(frozen=True)
class _Function:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[dict[str, Any], ...]


@cache
def _function(contract: str, name: str) -> _Function:
    for item in load_artifact(contract).abi:
        if item.get("type") == "function" and item["name"] == name:
            inputs = tuple(abi_type(i) for i in item["inputs"])
            selector = keccak(text=f"{name}({','.join(inputs)})")[:4]
            return _Function(selector, inputs, tuple(item["outputs"]))
    raise KeyError(f"{contract} has no function {name}")


class ViewAtBlockError(RuntimeError):
    """A view could not be read at the event's block."""


def attach_views(rpc: Any, manifest: Manifest, events: list[Event]) -> list[Event]:
    """`events` with `view` filled in for those that need one (one JSON-RPC batch)."""
    wanted = [(i, call) for i, e in enumerate(events) if (call := view_for(e)) is not None]
    if not wanted:
        return events
    requests = []
    for i, call in wanted:
        fn = _function(call.contract, call.function)
        data = "0x" + (fn.selector + abi_encode(list(fn.inputs), list(call.args))).hex()
        target = {"to": manifest.address(call.contract), "data": data}
        requests.append(("eth_call", [target, {"blockHash": events[i].block_hash}]))
    try:
        answers = rpc.batch(requests)
    except RpcError as exc:
        raise ViewAtBlockError(
            f"reading views at past blocks failed ({exc}); the indexer needs a node that answers "
            "eth_call at any indexed block (an archive node) for DataProducts terms"
        ) from exc
    out = list(events)
    for (i, call), answer in zip(wanted, answers, strict=True):
        fn = _function(call.contract, call.function)
        values = abi_decode([abi_type(o) for o in fn.outputs], bytes.fromhex(answer[2:]))
        decoded = {
            o["name"] or f"out{k}": _to_python(v, o)
            for k, (o, v) in enumerate(zip(fn.outputs, values, strict=True))
        }
        out[i] = replace(events[i], view=decoded)
    return out
