"""The guardian's bounded pause (GuardianPausable), on any contract that inherits it: when the
pause in force ends and whether the guardian may pause again, as protocol parameters of that
contract (`paused_until`, 0 when lifted; `guardian_armed`, 1 or 0; no row: never paused)."""

from __future__ import annotations

from workers.indexer.decode import Event
from workers.indexer.handlers import ANY_CONTRACT, on
from workers.indexer.store import Store


def _param(s: Store, ev: Event, name: str, value: int) -> None:
    s.put(
        "protocol_params",
        {"contract": ev.contract, "name": name, "value": value, "block_number": ev.block_number},
    )


@on(ANY_CONTRACT, "GuardianPaused")
def guardian_paused(ev: Event, s: Store) -> None:
    _param(s, ev, "paused_until", ev.args["until"])
    _param(s, ev, "guardian_armed", 0)


@on(ANY_CONTRACT, "GuardianUnpaused")
def guardian_unpaused(ev: Event, s: Store) -> None:
    _param(s, ev, "paused_until", 0)


@on(ANY_CONTRACT, "GuardianRearmed")
def guardian_rearmed(ev: Event, s: Store) -> None:
    _param(s, ev, "guardian_armed", 1)
