"""`ape console`'s namespace on a deployment, and running the console lines of a
documentation page: every statement of its ```python blocks, in order, in one namespace (the
console's), keeping the value of each expression."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import ape_console_extras

CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def open_console(chain: Any, deployment_file: Path) -> dict[str, Any]:
    """What `ape console` opens with (ape_console_extras.ape_init_extras) on `deployment_file`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEPLOYMENT_FILE", str(deployment_file))
        return dict(ape_console_extras.ape_init_extras(chain))


def statements(page: Path) -> list[str]:
    """The source of each top-level statement of the page's ```python blocks, in order."""
    found = []
    for block in CODE_BLOCK.findall(page.read_text()):
        for node in ast.parse(block).body:
            found.append(ast.get_source_segment(block, node) or "")
    return found


@dataclass
class PageRun:
    page: Path
    #: (source, value) of every expression statement, in order.
    answers: list[tuple[str, Any]] = field(default_factory=list)

    def values(self, fragment: str) -> list[Any]:
        """The values of the expressions whose source contains `fragment`, in order."""
        return [value for source, value in self.answers if fragment in source]

    def answer(self, fragment: str) -> Any:
        """The value of the one expression whose source contains `fragment`."""
        matches = self.values(fragment)
        assert len(matches) == 1, f"{len(matches)} expressions of {self.page.name} contain {fragment!r}"
        return matches[0]


def run_page(page: Path, namespace: dict[str, Any], before: Callable[[str], None] | None = None) -> PageRun:
    """Runs every statement; `before(source)` is called first (e.g. to let time pass)."""
    run = PageRun(page)
    for source in statements(page):
        if before is not None:
            before(source)
        node = ast.parse(source).body[0]
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), str(page), "eval"), namespace)
            run.answers.append((source, value))
        else:
            exec(compile(source, str(page), "exec"), namespace)
    return run
