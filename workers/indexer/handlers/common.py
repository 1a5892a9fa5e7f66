"""Events every contract may emit: AccessControl roles."""

from __future__ import annotations

from workers.indexer.decode import Event
from workers.indexer.handlers import ANY_CONTRACT, on
from workers.indexer.store import Store


@on(ANY_CONTRACT, "RoleGranted")
def role_granted(ev: Event, s: Store) -> None:
    s.put(
        "role_members",
        {
            "contract": ev.contract,
            "role": ev.args["role"],
            "account": ev.args["account"],
            "block_number": ev.block_number,
        },
    )


@on(ANY_CONTRACT, "RoleRevoked")
def role_revoked(ev: Event, s: Store) -> None:
    s.delete("role_members", ev.contract, ev.args["role"], ev.args["account"])
