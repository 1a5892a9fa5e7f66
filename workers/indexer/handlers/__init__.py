"""One handler per event: `@on("Contract", "Event")` registers a function that turns the
event into projection rows through the Store. Handlers never call the chain.

`on("*", "Event")` handles the event for every contract (AccessControl roles, …); a
contract-specific handler wins over it. The modules of HANDLER_MODULES are imported once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from workers.indexer.decode import Event
from workers.indexer.store import Store

Handler = Callable[[Event, Store], None]

ANY_CONTRACT = "*"
HANDLER_MODULES = (
    "workers.indexer.handlers.common",
    "workers.indexer.handlers.guardian",
    "workers.indexer.handlers.token",
    "workers.indexer.handlers.identity",
    "workers.indexer.handlers.staking",
    "workers.indexer.handlers.market",
)

_registry: dict[tuple[str, str], Handler] = {}


def on(contract: str, event: str) -> Callable[[Handler], Handler]:
    """Registers the decorated function as the handler of `contract`'s `event`."""

    def register(fn: Handler) -> Handler:
        if (contract, event) in _registry:
            raise ValueError(f"two handlers for {contract}.{event}")
        _registry[(contract, event)] = fn
        return fn

    return register


def load_handlers() -> None:
    """Imports every handler module (registering handlers and the views they need)."""
    for module in HANDLER_MODULES:
        importlib.import_module(module)


def handler_for(contract: str, event: str) -> Handler | None:
    """The handler of `contract`'s `event`, or None when the event only goes to chain_events."""
    if not _registry:
        load_handlers()
    return _registry.get((contract, event)) or _registry.get((ANY_CONTRACT, event))


def registered_handlers() -> list[tuple[str, str]]:
    """Every (contract, event) with a handler."""
    load_handlers()
    return sorted(_registry)
