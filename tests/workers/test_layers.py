"""The layering written in docs/architecture.md ("The code's layers") holds: every import
inside `workers/` goes down a layer, or sideways where the table allows it; a feature's
`tasks.py` may import the Celery app; the gateway never imports settlement or the outbox.

The table is read from the document itself, so the picture and the code cannot drift apart."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.config import PROJECT_ROOT

RUNTIME = PROJECT_ROOT / "workers"
DOC = PROJECT_ROOT / "docs" / "architecture.md"
#: Imports a serving process must never make, whatever the layers say.
NEVER_FROM_GATEWAY = ("workers.settlement", "workers.chain.outbox")

_ROW = re.compile(r"^\|\s*(\d)\s*\|(.+?)\|(.*?)\|\s*$")
_NAME = re.compile(r"`([a-z0-9_]+)`")
_SIDEWAYS = re.compile(r"`([a-z0-9_]+)` → `([a-z0-9_]+)`")


def layer_table() -> tuple[dict[str, int], set[tuple[str, str]]]:
    """(part → layer, allowed sideways (from, to) pairs) from the architecture document."""
    layers: dict[str, int] = {}
    sideways: set[tuple[str, str]] = set()
    for line in DOC.read_text().splitlines():
        row = _ROW.match(line)
        if row is None:
            continue
        for name in _NAME.findall(row.group(2)):
            layers[name] = int(row.group(1))
        sideways.update(_SIDEWAYS.findall(row.group(3)))
    return layers, sideways


def part_of(module: str) -> str | None:
    """The top-level part of `workers` a dotted module belongs to (None: not ours)."""
    pieces = module.split(".")
    if pieces[0] != "workers" or len(pieces) < 2:
        return None
    return pieces[1]


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted module) of every absolute import in `path`, at any depth; `from workers
    import x` counts as importing `workers.x`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "workers":
                for alias in node.names:
                    yield node.lineno, f"workers.{alias.name}"
            else:
                yield node.lineno, node.module


def runtime_files() -> list[Path]:
    return sorted(RUNTIME.rglob("*.py"))


def module_part(path: Path) -> str:
    relative = path.relative_to(RUNTIME)
    return relative.parts[0].removesuffix(".py")


def test_the_table_names_every_part_of_the_runtime() -> None:
    layers, sideways = layer_table()
    parts = {module_part(path) for path in runtime_files()} - {"__init__"}
    assert parts <= set(layers), f"parts missing from docs/architecture.md's table: {parts - set(layers)}"
    assert set(layers) <= parts, f"the table names parts that do not exist: {set(layers) - parts}"
    assert sideways, "the table lists no sideways imports: the parser lost them"


@pytest.mark.parametrize("path", runtime_files(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_imports_go_down_or_sideways_as_documented(path: Path) -> None:
    layers, sideways = layer_table()
    source = module_part(path)
    if source == "__init__":
        return
    wrong = []
    for line, module in imported_modules(path):
        target = part_of(module)
        if target is None or target == source:
            continue
        if path.name == "tasks.py" and target == "app":
            continue  # a feature registers its tasks on the Celery app
        if layers[target] < layers[source] or (source, target) in sideways:
            continue
        wrong.append(f"line {line}: {module} (layer {layers[target]}) from layer {layers[source]}")
    assert not wrong, f"{path.relative_to(PROJECT_ROOT)} imports upward or sideways:\n" + "\n".join(wrong)


def test_the_gateway_never_imports_what_moves_money() -> None:
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}"
        for path in (RUNTIME / "gateway").rglob("*.py")
        for line, module in imported_modules(path)
        if module.startswith(NEVER_FROM_GATEWAY)
    ]
    assert not found, "\n".join(found)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a store module importing the gateway is reported."""
    layers, _ = layer_table()
    probe = tmp_path / "probe.py"
    probe.write_text("from workers.gateway.app import create_app\nimport workers.db\n")
    targets = [part_of(module) for _, module in imported_modules(probe)]
    assert targets == ["gateway", "db"]
    assert layers["gateway"] > layers["db"]
