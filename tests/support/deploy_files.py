"""The deployment files of deploy/ read back for tests: the compose services (the commands a
deployment runs), the Dockerfiles and the build context their .dockerignore files let in, the
systemd units, and the settings example.

`local_argv` turns a compose command into the same command on this machine (the venv's
interpreter for `celery`, `python`, `alembic`; node_modules' anvil), so the integration test
starts the workers exactly as the compose file does."""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devkit.devnet import ANVIL_BIN
from workers.config import PROJECT_ROOT

DEPLOY_DIR = PROJECT_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "compose.yaml"
SYSTEMD_DIR = DEPLOY_DIR / "systemd"
ENV_EXAMPLE = DEPLOY_DIR / "workers.env.example"
#: The production image (the runtime only) and the devnet's dev image.
DOCKERFILE = DEPLOY_DIR / "Dockerfile"
DEVNET_DOCKERFILE = DEPLOY_DIR / "Dockerfile.devnet"
#: The image deploy/Dockerfile builds: services running it run this repository's workers.
WORKERS_IMAGE = "dimo-workers:local"
#: The image deploy/Dockerfile.devnet builds: the devnet's anvil, deployment and simulator.
DEVNET_IMAGE = "dimo-devnet:local"

#: Beat entries whose task no module of main registers yet: their queue's worker discards
#: them as unregistered. Remove a name once its task module is in workers.app TASK_MODULES.
PENDING_TASKS: frozenset[str] = frozenset()

#: A Dockerfile's line continuation.
CONTINUATION = "\\"

#: Console scripts of the venv that are Python modules too (`celery` = `python -m celery`).
PYTHON_MODULE_SCRIPTS = {"celery": "celery", "alembic": "alembic", "uvicorn": "uvicorn"}


def compose() -> dict[str, Any]:
    """deploy/compose.yaml, YAML merge keys (`<<: *workers`) resolved."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def workers_services() -> dict[str, dict[str, Any]]:
    """The services that run the production image."""
    return {name: s for name, s in compose_services().items() if s.get("image") == WORKERS_IMAGE}


def devnet_services() -> dict[str, dict[str, Any]]:
    """The services that run the devnet's dev image."""
    return {name: s for name, s in compose_services().items() if s.get("image") == DEVNET_IMAGE}


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


# ------------------------------------------------------------------------------- Docker


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, COPY, RUN, ...
    arguments: str


@dataclass(frozen=True)
class Stage:
    name: str
    base: str
    instructions: list[Instruction]

    def copies(self) -> list[tuple[str | None, list[str], str]]:
        """(--from stage or None for the build context, sources, destination) of each COPY."""
        found = []
        for instruction in self.instructions:
            if instruction.keyword not in ("COPY", "ADD"):
                continue
            words = shlex.split(instruction.arguments)
            options = {w.split("=", 1)[0]: w.partition("=")[2] for w in words if w.startswith("--")}
            *sources, destination = [w for w in words if not w.startswith("--")]
            found.append((options.get("--from"), sources, destination))
        return found

    def runs(self) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == "RUN"]


def dockerfile_stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile in order (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        continued = line.endswith(CONTINUATION)
        pending.append(line.removesuffix(CONTINUATION).strip())
        if not continued:
            logical.append(" ".join(pending))
            pending = []
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            base, *name = re.split(r"\s+as\s+", arguments.strip(), maxsplit=1, flags=re.IGNORECASE)
            stages.append(Stage(name[0] if name else str(len(stages)), base, []))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return stages


@dataclass(frozen=True)
class IgnoreRule:
    """One .dockerignore line: a pattern and whether it is an exception (`!`)."""

    text: str
    regex: re.Pattern[str]
    exception: bool


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (moby/patternmatcher): `**` spans directories, `*` and `?` stay
    within one name. Character classes are not used here and refused rather than guessed."""
    if "[" in pattern or "\\" in pattern:
        raise ValueError(f"unsupported .dockerignore pattern {pattern!r}")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules(dockerfile: Path) -> list[IgnoreRule]:
    """The rules of `<dockerfile>.dockerignore`, the file BuildKit reads for that Dockerfile."""
    rules = []
    for raw in Path(f"{dockerfile}.dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append(IgnoreRule(line, _ignore_regex(pattern), exception))
    return rules


def ignored(path: str, rules: list[IgnoreRule]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for rule in rules:
        if any(rule.regex.match(candidate) for candidate in candidates):
            verdict = not rule.exception
    return verdict


def build_context(dockerfile: Path, root: Path = PROJECT_ROOT) -> set[str]:
    """The paths (relative to `root`) Docker sends as the build context of `dockerfile`: every
    file or symbolic link under `root` its .dockerignore does not leave out. A left-out
    directory that no exception reaches into is not walked (.venv, node_modules)."""
    rules = ignore_rules(dockerfile)
    # what each exception names before its first wildcard: "" reaches everywhere
    reopened = [
        re.split(r"[*?]", r.text.lstrip("!").strip().strip("/"), maxsplit=1)[0] for r in rules if r.exception
    ]

    def walked(directory: str) -> bool:
        if directory == ".git":
            return False
        return not ignored(directory, rules) or any(
            not fixed or fixed.startswith(f"{directory}/") for fixed in reopened
        )

    found: set[str] = set()
    for current, directories, files in os.walk(root):
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else f"{base}/"
        links = [d for d in directories if (Path(current) / d).is_symlink()]
        found.update(prefix + name for name in [*files, *links] if not ignored(prefix + name, rules))
        directories[:] = [d for d in directories if d not in links and walked(prefix + d)]
    return found


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
