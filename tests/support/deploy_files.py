"""The deployment files of deploy/ read back for tests: the compose services (the commands a
deployment runs), the systemd units, and the settings example.

`local_argv` turns a compose command into the same command on this machine (the venv's
interpreter for `celery`, `python`, `alembic`; node_modules' anvil), so the integration test
starts the workers exactly as the compose file does."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workers.config import PROJECT_ROOT
from workers.devnet import ANVIL_BIN

DEPLOY_DIR = PROJECT_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "compose.yaml"
SYSTEMD_DIR = DEPLOY_DIR / "systemd"
ENV_EXAMPLE = DEPLOY_DIR / "workers.env.example"
#: The image deploy/Dockerfile builds: services running it run this repository's code.
WORKERS_IMAGE = "dimo-workers:local"

#: Beat entries whose task no module of main registers yet: their queue's worker discards
#: them as unregistered. Remove a name once its task module is in workers.app TASK_MODULES.
PENDING_TASKS: frozenset[str] = frozenset()

#: Console scripts of the venv that are Python modules too (`celery` = `python -m celery`).
PYTHON_MODULE_SCRIPTS = {"celery": "celery", "alembic": "alembic", "uvicorn": "uvicorn"}


def compose() -> dict[str, Any]:
    """deploy/compose.yaml, YAML merge keys (`<<: *workers`) resolved."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def workers_services() -> dict[str, dict[str, Any]]:
    """The services that run this repository's image."""
    return {name: s for name, s in compose_services().items() if s.get("image") == WORKERS_IMAGE}


def local_argv(command: list[str]) -> list[str]:
    """A compose command as this machine runs it (same arguments, local executables)."""
    program, *args = command
    if program == "python":
        return [sys.executable, *args]
    if program in PYTHON_MODULE_SCRIPTS:
        return [sys.executable, "-m", PYTHON_MODULE_SCRIPTS[program], *args]
    if program == "anvil":
        return [str(ANVIL_BIN), *args]
    raise ValueError(f"no local equivalent for {program!r}")


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${NAME:-default}` with `env` standing in for the shell."""
    return _INTERPOLATION.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


# ------------------------------------------------------------------------------- systemd


@dataclass(frozen=True)
class Unit:
    name: str
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        return found[-1] if found else None


def read_unit(path: Path) -> Unit:
    """A systemd unit file: sections of (key, value) in order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            raise ValueError(f"{path}: unexpected line {raw!r}")
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return Unit(path.name, sections)


def units() -> dict[str, Unit]:
    return {
        p.name: read_unit(p) for p in sorted(SYSTEMD_DIR.iterdir()) if p.suffix in (".service", ".target")
    }


# ------------------------------------------------------------------------------- settings example


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    commented: bool
    line: int


_ENTRY = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example_entries(path: Path = ENV_EXAMPLE) -> list[EnvEntry]:
    """`NAME=value` and `# NAME=value` lines; single quotes around a value are removed."""
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        match = _ENTRY.match(raw)
        if not match:
            continue
        value = match.group(3)
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        entries.append(EnvEntry(match.group(2), value, match.group(1) is not None, number))
    return entries
