"""Reading what the indexer wrote, to compare two indexes or an index with the chain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from workers.db import Base, load_models

#: Tables an index is compared on: every projection, and the decoded events.
NOT_COMPARED = frozenset(
    {
        "indexer_cursor",
        "indexer_blocks",
        "indexer_undo",
        "indexer_health",
        "projection_versions",
        "alembic_version",
        "usage_counters",
        "chain_txs",
        "settlement_products",
        "settlement_periods",
        "settlement_accounts",
        "settlement_roots",
        "settlement_root_leaves",
    }
)


def projection_tables() -> list[str]:
    load_models()
    return sorted(t for t in Base.metadata.tables if t not in NOT_COMPARED)


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every compared table, sorted: equal dumps mean equal indexes."""
    load_models()
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in projection_tables():
            table = Base.metadata.tables[name]
            rows = conn.execute(select(table)).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def diff(left: dict[str, list[tuple[Any, ...]]], right: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Human-readable differences between two dumps (empty when equal)."""
    problems = []
    for name in sorted(set(left) | set(right)):
        a, b = set(left.get(name, [])), set(right.get(name, []))
        if a != b:
            problems.append(
                f"{name}: only left {sorted(a - b, key=repr)[:5]}, only right {sorted(b - a, key=repr)[:5]}"
            )
    return problems


def rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    load_models()
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(Base.metadata.tables[table]))]
