"""DimoToken balances (ERC-20 Transfer). Treasury inflows and releases are token Transfers
too; the Treasury's own Received / Released events stay in chain_events."""

from __future__ import annotations

from workers.indexer.decode import Event
from workers.indexer.handlers import on
from workers.indexer.store import Store
from workers.protocol import ZERO_ADDRESS


def _add(s: Store, ev: Event, account: str, delta: int) -> None:
    row = s.get("token_balances", ev.contract, account)
    balance = (row["balance"] if row else 0) + delta
    if balance < 0:
        raise ValueError(f"{ev.contract} balance of {account} would go negative at block {ev.block_number}")
    s.put(
        "token_balances",
        {"token": ev.contract, "account": account, "balance": balance, "block_number": ev.block_number},
    )


@on("DimoToken", "Transfer")
def transfer(ev: Event, s: Store) -> None:
    value = ev.args["value"]
    if ev.args["from"] != ZERO_ADDRESS:
        _add(s, ev, ev.args["from"], -value)
    if ev.args["to"] != ZERO_ADDRESS:
        _add(s, ev, ev.args["to"], value)
