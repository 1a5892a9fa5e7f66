"""The process's runtime (workers/runtime.py) and the layering around it: services are built
once, on first use, and rebuilt after `close()`; a forked child never reuses a pooled
connection of its parent; the chain package imports nothing above it and serving never
imports, nor loads, the outbox or settlement."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from workers.chain import TransientRpcError
from workers.config import PROJECT_ROOT, Settings
from workers.runtime import Runtime

WORKERS = PROJECT_ROOT / "workers"
#: What moves money: the transaction sender and every module of settlement.
MONEY = ("workers.chain.outbox", "workers.settlement")


def test_nothing_connects_before_first_use(sqlite_db):
    runtime = Runtime(Settings(database_url=sqlite_db, rpc_url="http://127.0.0.1:9", rpc_timeout=0.2))
    with runtime.database.session(read_only=True) as session:
        assert session.execute(text("select 1")).scalar() == 1
    with pytest.raises(TransientRpcError, match="cannot reach"):
        _ = runtime.chain
    runtime.close()


def test_services_are_built_once_and_again_after_close(deployment, sqlite_db):
    anvil, _manifest, path = deployment
    settings = Settings(database_url=sqlite_db, rpc_url=anvil.url, deployment_file=path, confirmations=0)
    runtime = Runtime(settings)
    chain, database, indexer = runtime.chain, runtime.database, runtime.indexer
    assert runtime.chain is chain and runtime.database is database and runtime.indexer is indexer
    assert indexer.chain is chain and indexer.engine is database.engine
    assert runtime.settlement.chain is chain and runtime.settlement.engine is database.engine
    assert indexer.sync().events > 0
    runtime.close()
    assert runtime.chain is not chain and runtime.database is not database and runtime.indexer is not indexer
    assert runtime.indexer.sync().events == 0  # a fresh indexer finds the cursor where the first left it
    runtime.close()


def test_a_forked_child_gets_none_of_its_parents_connections(db_url):
    runtime = Runtime(Settings(database_url=db_url))
    with runtime.database.session() as session:
        session.execute(text("select 1"))
    pool = runtime.database.engine.pool
    assert pool.checkedin() == 1  # the parent's connection waits in the pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what its pool holds, touch nothing else
        os.close(read)
        os.write(write, str(runtime.database.engine.pool.checkedin()).encode())
        os._exit(0)
    os.close(write)
    child_pooled = int(os.read(read, 16).decode())
    os.close(read)
    os.waitpid(pid, 0)
    assert child_pooled == 0
    with runtime.database.session() as session:  # the parent's connection still works
        assert session.execute(text("select 1")).scalar() == 1
    runtime.close()


# --- layering ---------------------------------------------------------------------------------


def _imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "workers" or name.startswith("workers.")}


def test_the_chain_package_imports_only_the_protocol_the_settings_and_for_the_outbox_the_models():
    for path in sorted((WORKERS / "chain").glob("*.py")):
        allowed = ("workers.chain", "workers.config", "workers.protocol")
        allowed += ("workers.db",) if path.name == "outbox.py" else ()
        outside = {m for m in _imports(path) if not m.startswith(allowed)}
        assert outside == set(), f"{path.name} imports {sorted(outside)}"
    assert _imports(WORKERS / "config.py") == set()


def _moves_money(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in MONEY)


def test_serving_never_imports_the_outbox():
    for path in sorted((WORKERS / "gateway").glob("*.py")):
        assert {m for m in _imports(path) if _moves_money(m)} == set(), path.name
    # The runtime builds settlement for the workers, but loads it only when asked to.
    assert {m for m in _imports(WORKERS / "runtime.py", module_level_only=True) if _moves_money(m)} == set()


def test_the_gateway_loads_nothing_that_moves_money():
    """Everything `import workers.gateway.app` loads, through any chain of imports, in a
    fresh interpreter: usage is recorded through the ledger, never through settlement."""
    probe = "import json, sys, workers.gateway.app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = json.loads(run.stdout.splitlines()[-1])
    assert {"workers.gateway.app", "workers.ledger"} <= set(loaded), "the probe did not load the gateway"
    assert [m for m in loaded if _moves_money(m)] == []
