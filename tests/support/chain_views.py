"""The chain's state read through the contracts' views, compared with the index."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.support.history import History
from tests.support.projections import rows


def index_vs_chain(engine: Engine, history: History) -> list[str]:
    """Every disagreement between the projections and the chain's views (empty: none)."""
    problems: list[str] = []
    problems += _token(engine, history)
    problems += _roles(engine, history)
    return problems


def _token(engine: Engine, history: History) -> list[str]:
    token = history.contract("DimoToken")
    balances = {
        r["account"]: r["balance"] for r in rows(engine, "token_balances") if r["token"] == "DimoToken"
    }
    problems = [
        f"balance of {account}: index {value}, chain {token.functions.balanceOf(account).call()}"
        for account, value in balances.items()
        if token.functions.balanceOf(history.w3.to_checksum_address(account)).call() != value
    ]
    supply = token.functions.totalSupply().call()
    if sum(balances.values()) != supply:
        problems.append(f"indexed balances sum to {sum(balances.values())}, total supply is {supply}")
    return problems


def _roles(engine: Engine, history: History) -> list[str]:
    indexed = {(r["contract"], r["role"], r["account"]) for r in rows(engine, "role_members")}
    problems = []
    for contract, role, account in history.role_candidates | indexed:
        held = (
            history.contract(contract).functions.hasRole(role, history.w3.to_checksum_address(account)).call()
        )
        if held != ((contract, role, account.lower()) in indexed):
            problems.append(f"{contract} role {role} of {account}: chain {held}, index {not held}")
    return problems
