"""deploy/: the compose file, the Dockerfiles, the systemd units and the settings example say
only true things about this repository — every command is a real entry point with options it
accepts, every environment name is a setting, every setting is documented with its real
default, every queue has its worker, the production image holds the runtime and nothing of
the dev kit — so they cannot drift from the code. (Docker is not run here; the integration
test runs the compose commands against PostgreSQL and RabbitMQ.)"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from alembic.config import CommandLine
from celery.bin.base import CLIContext
from celery.bin.celery import celery
from dotenv import dotenv_values

from devkit.devnet import ANVIL_BIN
from tests.support.deploy_files import (
    COMPOSE_FILE,
    DEPLOY_DIR,
    DEVNET_DOCKERFILE,
    DEVNET_IMAGE,
    DOCKERFILE,
    ENV_EXAMPLE,
    PENDING_TASKS,
    SYSTEMD_DIR,
    WORKERS_IMAGE,
    build_context,
    compose_services,
    devnet_services,
    dockerfile_stages,
    env_example_entries,
    interpolate,
    local_argv,
    units,
    workers_services,
)
from workers.app import QUEUES, app, beat_schedule
from workers.config import PROJECT_ROOT, Settings

SETTING_NAMES = {name.upper() for name in Settings.model_fields}
INSTALL_ROOT = "/opt/dimo"
ENV_FILE = "/etc/dimo/workers.env"
#: Hardening every long-running unit carries (systemd.exec(5)).
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
}


# ------------------------------------------------------------------------ entry points


def celery_command(args: list[str]) -> tuple[str, dict]:
    """Parses `celery <args>` with Celery's own command line; (subcommand, its options)."""
    obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    ctx = celery.make_context("celery", list(args), obj=obj)
    assert ctx.params["app"] == "workers.app", f"celery -A must name workers.app, not {ctx.params['app']}"
    name, *rest = ctx.protected_args + ctx.args
    sub = celery.get_command(ctx, name)
    assert sub is not None, f"celery has no subcommand {name!r}"
    return name, sub.make_context(name, rest, parent=ctx, obj=obj).params


def help_text(argv: list[str]) -> str:
    done = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False
    )
    assert done.returncode == 0, f"{shlex.join(argv)} --help failed:\n{done.stderr[-2000:]}"
    return done.stdout


def assert_options_exist(argv: list[str], options: list[str]) -> None:
    if not any(option.startswith("--") for option in options):
        return
    text = help_text(argv)
    for option in options:
        if option.startswith("--"):
            assert option in text, f"{shlex.join(argv)} has no option {option}"


def assert_entry_point(command: list[str]) -> str:
    """`command` runs something this repository provides, with options it accepts; what it is."""
    program, *args = command
    if program == "celery":
        name, params = celery_command(args)
        if name == "worker":
            assert params["queues"], "a worker names its queue with -Q"
            unknown = set(params["queues"]) - set(QUEUES)
            assert not unknown, f"queues {unknown} are not workers.app QUEUES {QUEUES}"
            return "worker:" + ",".join(params["queues"])
        assert name == "beat", f"celery {name} is not a deployment process"
        return "beat"
    if program == "python":
        assert args[0] == "-m", f"python runs modules of this repository (-m), not {args}"
        module = args[1]
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"no module {module}"
        if spec.submodule_search_locations:  # a package: it needs a __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} has no __main__"
        assert_options_exist(local_argv(command[:3]), args[2:])
        return f"python -m {module}"
    if program == "alembic":
        parsed = CommandLine().parser.parse_args(args)
        assert parsed.cmd[0].__name__ == "upgrade" and parsed.revision == "head"
        assert (PROJECT_ROOT / "alembic.ini").exists()
        return "migrate"
    if program == "anvil":
        assert_options_exist([str(ANVIL_BIN)], args)
        return "anvil"
    raise AssertionError(f"{program!r} is not an entry point of this repository")


# ------------------------------------------------------------------------ compose


def test_every_beat_entry_names_a_task_a_worker_of_its_queue_registers() -> None:
    app.loader.import_default_modules()  # what `celery worker` imports at start
    for entry in beat_schedule(Settings()).values():
        name = entry["task"]
        assert name.split(".", 1)[0] in QUEUES, f"{name} is routed to no queue"
        if name in PENDING_TASKS:
            assert name not in app.tasks, f"{name} is registered now: remove it from PENDING_TASKS"
            continue
        assert name in app.tasks, f"beat schedules {name}, which no module of TASK_MODULES registers"


def test_every_compose_command_is_a_real_entry_point_of_this_repository() -> None:
    services = workers_services()
    roles = {name: assert_entry_point(service["command"]) for name, service in services.items()}
    workers = [role for role in roles.values() if role.startswith("worker:")]
    assert sorted(r.removeprefix("worker:") for r in workers) == sorted(QUEUES), (
        f"one worker per queue: {workers} vs {QUEUES}"
    )
    assert list(roles.values()).count("beat") == 1, "exactly one beat (two would double every tick)"
    assert "python -m workers.gateway" in roles.values()
    assert "migrate" in roles.values()


def test_compose_sets_only_settings_of_workers_config() -> None:
    for name, service in workers_services().items():
        unknown = set(service.get("environment") or {}) - SETTING_NAMES
        assert not unknown, f"service {name} sets {unknown}, which are not workers/config.py settings"
        for entry in service.get("env_file") or []:
            path = entry["path"] if isinstance(entry, dict) else entry
            assert path == "workers.env", (
                f"{name} reads {path}; deploy/workers.env.example documents workers.env"
            )


def test_compose_runs_the_workers_after_the_migrations_on_the_services_it_defines() -> None:
    services = workers_services()
    defined = set(compose_services())
    for name, service in services.items():
        role = assert_entry_point(service["command"])
        if role.startswith(("worker:", "beat", "python -m workers.gateway")):
            after = service.get("depends_on") or {}
            assert after.get("migrate", {}).get("condition") == "service_completed_successfully", name
    gateway = services["gateway"]["environment"]
    database = interpolate(gateway["DATABASE_URL"], {})
    assert database.startswith("postgresql://") and "@postgres:" in database and "postgres" in defined
    broker = interpolate(gateway["BROKER_URL"], {})
    assert broker.startswith("redis://redis:") and {"redis", "rabbitmq"} <= defined
    assert interpolate(gateway["RPC_URL"], {}) == "http://anvil:8545" and "anvil" in defined
    assert (
        interpolate(gateway["RPC_URL"], {"RPC_URL": "https://rpc.example.org"}) == "https://rpc.example.org"
    )
    port = gateway["GATEWAY_PORT"]
    assert any(str(p).endswith(f":{port}") for p in services["gateway"]["ports"])


def test_the_devnet_services_run_the_dev_image_and_the_workers_never_run_the_dev_kit() -> None:
    devnet = devnet_services()
    assert sorted(devnet) == ["anvil", "deploy", "oem-simulator"]
    for name, service in devnet.items():
        assert service.get("profiles") == ["devnet"], f"{name} runs outside the devnet profile"
    roles = {name: assert_entry_point(service["command"]) for name, service in devnet.items()}
    assert roles == {
        "anvil": "anvil",
        "deploy": "python -m scripts.deploy",
        "oem-simulator": "python -m devkit.simulator",
    }
    for name, service in workers_services().items():
        program = " ".join(service["command"][:3])
        assert not any(dev in program for dev in ("anvil", "devkit", "scripts")), f"{name} runs {program}"
    images = {WORKERS_IMAGE: DOCKERFILE, DEVNET_IMAGE: DEVNET_DOCKERFILE}
    for name, service in compose_services().items():
        if "build" in service:
            dockerfile = PROJECT_ROOT / service["build"]["dockerfile"]
            assert images.get(service["image"]) == dockerfile, (
                f"{name} builds {service['image']} from {dockerfile}"
            )
            assert "target" not in service["build"], f"{name}: each image is its Dockerfile's last stage"


# ------------------------------------------------------------------------ Docker images

#: What the production image's build context never holds: the dev kit (with the OEM simulator),
#: the tests, the benchmarks, the scripts, and local state and tool installs.
NOT_IN_THE_IMAGE = (
    "devkit/",
    "tests/",
    "benchmarks/",
    "scripts/",
    "ape_console_extras.py",
    "node_modules",
    ".venv",
    ".toolchain",
    ".build",
    ".run",
    "deployments",
    "out/",
    "cache/",
    "contracts/.cache",
)


def assert_copies_come_from(dockerfile: Path, context: set[str]) -> None:
    """Every COPY of the build context names something the context holds (the image builds)."""
    for stage in dockerfile_stages(dockerfile):
        for source_stage, sources, _ in stage.copies():
            if source_stage is not None:
                continue
            for source in sources:
                assert any(p == source or p.startswith(f"{source}/") for p in context), (
                    f"{dockerfile.name}, stage {stage.name}: COPY {source}, left out by its .dockerignore"
                )


def test_the_image_build_context_holds_the_runtime_and_the_contracts_only() -> None:
    context = build_context(DOCKERFILE)
    assert "workers/app.py" in context and "workers/db/migrations/env.py" in context
    assert {"alembic.ini", "pyproject.toml", "requirements.lock", "tools/setup.sh"} <= context
    assert any(p.startswith("contracts/") and p.endswith(".sol") for p in context)
    leaked = sorted(p for p in context if p.startswith(NOT_IN_THE_IMAGE) or "simulator" in p.split("/"))
    assert not leaked, f"the production image's build context holds {leaked[:20]}"
    assert not any("__pycache__" in p for p in context)
    assert_copies_come_from(DOCKERFILE, context)


def test_the_devnet_image_build_context_holds_the_dev_kit() -> None:
    context = build_context(DEVNET_DOCKERFILE)
    assert {"devkit/simulator/__main__.py", "scripts/deploy.py", "workers/chain/deployment.py"} <= context
    assert not any(p.startswith(("tests/", "benchmarks/", ".venv", "node_modules")) for p in context)
    assert_copies_come_from(DEVNET_DOCKERFILE, context)


def test_the_runtime_stage_carries_the_runtime_packages_workers_and_the_artifacts_only() -> None:
    stages = {stage.name: stage for stage in dockerfile_stages(DOCKERFILE)}
    runtime = dockerfile_stages(DOCKERFILE)[-1]  # what `docker build` and compose build
    assert runtime.base not in stages, "the runtime stage starts from a clean base image"
    from_context = {
        s for source_stage, sources, _ in runtime.copies() if source_stage is None for s in sources
    }
    assert from_context == {"alembic.ini", "workers"}, from_context
    from_stages = {
        (source_stage, s) for source_stage, sources, _ in runtime.copies() if source_stage for s in sources
    }
    venv_stage = next(stage for stage, source in from_stages if source == "/app/.venv")
    assert from_stages == {("build", "/app/.build"), (venv_stage, "/app/.venv")}, from_stages
    assert not any("pip" in run or "setup.sh" in run for run in runtime.runs())

    venv = stages[venv_stage]
    assert venv.base not in stages, "the runtime venv is built apart from the build stage's full one"
    assert {s for _, sources, _ in venv.copies() for s in sources} == {"pyproject.toml", "requirements.lock"}
    installs = [run for run in venv.runs() if "pip install" in run]
    assert len(installs) == 1
    install = installs[0]
    assert '["project"]["dependencies"]' in install, "the venv installs pyproject's dependencies"
    assert "-c requirements.lock" in install, "at the lock's pins"
    assert "-r requirements.lock" not in install and "setup.sh" not in install, "not the whole lock"
    assert "optional-dependencies" not in install and ".[" not in install, "no extras"


# ------------------------------------------------------------------------ systemd


def systemd_argv(unit_text: str) -> list[str]:
    argv = shlex.split(unit_text)
    program = Path(argv[0])
    assert str(program.parent) == f"{INSTALL_ROOT}/.venv/bin", f"{argv[0]} is not the installed venv's"
    return [program.name, *argv[1:]]


def test_the_systemd_units_run_the_compose_commands() -> None:
    found = units()
    template = found["dimo-worker@.service"]
    for queue in QUEUES:
        exec_start = template.value("Service", "ExecStart") or ""
        argv = [a.replace("%i", queue).replace("%H", "host") for a in systemd_argv(exec_start)]
        assert assert_entry_point(argv) == f"worker:{queue}"
    assert (
        assert_entry_point(systemd_argv(found["dimo-beat.service"].value("Service", "ExecStart"))) == "beat"
    )
    gateway = systemd_argv(found["dimo-gateway.service"].value("Service", "ExecStart"))
    assert assert_entry_point(gateway) == "python -m workers.gateway"
    migrate = found["dimo-migrate.service"]
    assert assert_entry_point(systemd_argv(migrate.value("Service", "ExecStart"))) == "migrate"
    assert migrate.value("Service", "Type") == "oneshot"
    wanted = " ".join(found["dimo.target"].values("Unit", "Wants")).split()
    assert sorted(w for w in wanted if w.startswith("dimo-worker@")) == sorted(
        f"dimo-worker@{q}.service" for q in QUEUES
    )
    assert {"dimo-beat.service", "dimo-gateway.service", "dimo-migrate.service"} <= set(wanted)


@pytest.mark.parametrize("name", ["dimo-worker@.service", "dimo-beat.service", "dimo-gateway.service"])
def test_long_running_units_restart_are_hardened_and_read_the_settings_file(name: str) -> None:
    unit = units()[name]
    assert unit.value("Service", "EnvironmentFile") == ENV_FILE
    assert unit.value("Service", "Restart") == "always"
    assert unit.value("Service", "User") == "dimo"
    assert "dimo-migrate.service" in (unit.value("Unit", "Requires") or "")
    assert "dimo-migrate.service" in (unit.value("Unit", "After") or "")
    for key, value in HARDENING.items():
        assert unit.value("Service", key) == value, f"{name}: {key}={value} expected"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    """systemd's own check (unknown keys, bad values, missing executables), with the install
    root pointed at this checkout so the executables exist."""
    for path in SYSTEMD_DIR.iterdir():
        text = path.read_text().replace(INSTALL_ROOT, str(PROJECT_ROOT)).replace(ENV_FILE, str(ENV_EXAMPLE))
        (tmp_path / path.name).write_text(text)
    names = [f"dimo-worker@{q}.service" for q in QUEUES]
    names += ["dimo-beat.service", "dimo-gateway.service", "dimo-migrate.service", "dimo.target"]
    done = subprocess.run(
        ["systemd-analyze", "verify", *names], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# ------------------------------------------------------------------------ settings example


def test_the_settings_example_lists_every_setting_exactly_once() -> None:
    names = [e.name for e in env_example_entries()]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates, f"{ENV_EXAMPLE.name} lists {duplicates} more than once"
    missing = SETTING_NAMES - set(names)
    assert not missing, f"{ENV_EXAMPLE} does not document {sorted(missing)}: add them with their defaults"
    unknown = set(names) - SETTING_NAMES
    assert not unknown, f"{ENV_EXAMPLE} lists {sorted(unknown)}, which workers/config.py does not read"


def _settings_from(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_commented_settings_show_their_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = _settings_from({}, monkeypatch)
    for entry in env_example_entries():
        if not entry.commented:
            continue
        shown = _settings_from({entry.name: entry.value}, monkeypatch)
        field = entry.name.lower()
        if entry.value == "":  # empty means "unset" for optional settings
            assert getattr(defaults, field) in (None, ""), f"line {entry.line}: {entry.name} has a default"
            continue
        assert getattr(shown, field) == getattr(defaults, field), (
            f"{ENV_EXAMPLE.name}:{entry.line}: {entry.name}={entry.value} but the default is "
            f"{getattr(defaults, field)!r}"
        )


def test_the_settings_example_loads_as_systemd_and_compose_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The uncommented values are what an operator edits: they must load into Settings, and
    single-quoted JSON must survive dotenv parsing (systemd and compose strip the quotes)."""
    values = {k: v for k, v in dotenv_values(ENV_EXAMPLE).items() if v is not None}
    expected = {e.name: e.value for e in env_example_entries() if not e.commented}
    assert values == expected
    settings = _settings_from(values, monkeypatch)
    assert settings.database_url.startswith("postgresql://")
    assert settings.oem_connection_list()[0].kind == "smartcar"
    assert len(settings.oem_token_keys) == 1


def test_the_filled_in_settings_are_never_committed() -> None:
    assert (DEPLOY_DIR / "Dockerfile").exists() and COMPOSE_FILE.exists()
    gitignore = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/workers.env" in gitignore, "the filled-in settings (secrets) must never be committed"
