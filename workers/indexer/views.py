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

from workers.chain.artifacts import abi_type, load_artifact
from workers.chain.deployment import Manifest
from workers.chain.rpc import RpcError, TransientRpcError
from workers.indexer.decode import Event, _to_python

#: (function name, its decoded arguments by name, the event) → the view, or None.
FromInput = Callable[[str, dict[str, Any], Event], dict[str, Any] | None]


@dataclass(frozen=True)
class ViewCall:
    """`contract.function(*args)` read at the event's block. `from_input`, when the node cannot
    answer for that block (no archive state, or anvil after evm_revert), derives the same
    answer from the event's own transaction input, when that transaction called `contract`
    directly."""

    contract: str
    function: str
    args: tuple[Any, ...]
    from_input: FromInput | None = None


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


@cache
def _selectors(contract: str) -> dict[bytes, dict[str, Any]]:
    out = {}
    for item in load_artifact(contract).abi:
        if item.get("type") == "function":
            signature = f"{item['name']}({','.join(abi_type(i) for i in item['inputs'])})"
            out[keccak(text=signature)[:4]] = item
    return out


def _decode_output(call: ViewCall, answer: str) -> dict[str, Any]:
    fn = _function(call.contract, call.function)
    values = abi_decode([abi_type(o) for o in fn.outputs], bytes.fromhex(answer[2:]))
    return {
        o["name"] or f"out{k}": _to_python(v, o)
        for k, (o, v) in enumerate(zip(fn.outputs, values, strict=True))
    }


def _from_transaction(rpc: Any, manifest: Manifest, call: ViewCall, event: Event) -> dict[str, Any] | None:
    """The view derived from the input of the event's transaction, if it called the contract."""
    if call.from_input is None:
        return None
    tx = rpc.call("eth_getTransactionByHash", [event.tx_hash])
    if not tx or str(tx.get("to") or "").lower() != manifest.address(call.contract).lower():
        return None
    data = bytes.fromhex(tx["input"][2:])
    item = _selectors(call.contract).get(data[:4])
    if item is None:
        return None
    values = abi_decode([abi_type(i) for i in item["inputs"]], data[4:])
    args = {i["name"]: _to_python(v, i) for i, v in zip(item["inputs"], values, strict=True)}
    return call.from_input(item["name"], args, event)


def _one_by_one(
    rpc: Any, manifest: Manifest, calls: list[tuple[ViewCall, Event, list[Any]]]
) -> list[dict[str, Any]]:
    views = []
    for call, event, params in calls:
        try:
            views.append(_decode_output(call, rpc.call("eth_call", params)))
            continue
        except RpcError as exc:
            if isinstance(exc, TransientRpcError):
                raise
            failure = exc
        view = _from_transaction(rpc, manifest, call, event)
        if view is None:
            raise ViewAtBlockError(
                f"reading {call.contract}.{call.function} at block {event.block_number} failed "
                f"({failure}), and its transaction {event.tx_hash} did not call {call.contract} directly; "
                "the indexer needs a node that answers eth_call at any indexed block (an archive node)"
            ) from failure
        views.append(view)
    return views


def attach_views(rpc: Any, manifest: Manifest, events: list[Event]) -> list[Event]:
    """`events` with `view` filled in for those that need one (one JSON-RPC batch; call by
    call, with the transaction-input fallback, when the batch fails)."""
    wanted = [(i, call) for i, e in enumerate(events) if (call := view_for(e)) is not None]
    if not wanted:
        return events
    calls = []
    for i, call in wanted:
        fn = _function(call.contract, call.function)
        data = "0x" + (fn.selector + abi_encode(list(fn.inputs), list(call.args))).hex()
        target = {"to": manifest.address(call.contract), "data": data}
        calls.append((call, events[i], [target, {"blockHash": events[i].block_hash}]))
    try:
        answers = rpc.batch([("eth_call", params) for _, _, params in calls])
        views = [_decode_output(call, answer) for (call, _, _), answer in zip(calls, answers, strict=True)]
    except TransientRpcError:
        raise
    except RpcError:
        views = _one_by_one(rpc, manifest, calls)
    out = list(events)
    for (i, _call), view in zip(wanted, views, strict=True):
        out[i] = replace(events[i], view=view)
    return out
