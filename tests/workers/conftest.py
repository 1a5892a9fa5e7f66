"""Fixtures of the worker suites: databases (SQLite and PostgreSQL, migrated by Alembic),
process-wide settings that point the workers at them, and the OEM side's simulator and
identity chain (one of each per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.databases import migrated, postgres_database, postgres_unavailable, sqlite_url
from tests.support.anvil import AnvilNode
from tests.support.databases import close_databases
from tests.support.oem_chain import IdentityChain, identity_chain
from tests.support.simulator import SimulatorProcess
from workers.config import Settings, get_settings, use_settings

HERE = Path(__file__).parent

#: The longest files of the worker suites, longest first. tools/run-pytest.sh runs the suites
#: on several processes, one file at a time each (pytest-xdist, `--dist loadfile` in collection
#: order): these start first, so that none of them is left running alone at the end.
SLOW_FILES = (
    "gateway/test_privacy_property.py",
    "test_settlement_crash.py",
    "test_indexer.py",
    "test_celery.py",
    "test_reorg.py",
    "test_stack_and_demo.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if not item.path.is_relative_to(HERE):
            return len(SLOW_FILES)
        name = item.path.relative_to(HERE).as_posix()
        return SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: the other files keep their order


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database URL, once on SQLite and once on PostgreSQL (skipped if absent)."""
    if request.param == "sqlite":
        with migrated(sqlite_url(tmp_path)) as url:
            yield url
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_database() as raw, migrated(raw) as url:
        yield url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database (tests that need only one backend)."""
    with migrated(sqlite_url(tmp_path)) as url:
        yield url


@pytest.fixture(autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Each test starts from the environment's settings and leaves them as it found them."""
    use_settings(None)
    yield
    use_settings(None)
    close_databases()


@pytest.fixture
def settings_for(db_url: str) -> Settings:
    """Settings pointing at the test database; installed process-wide."""
    settings = get_settings().model_copy(update={"database_url": db_url})
    use_settings(settings)
    return settings


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """The OEM simulator (8 vehicles) as an HTTP server process, one per module."""
    process = SimulatorProcess(log_dir=tmp_path_factory.mktemp("sim"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def chain_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityChain]:
    """A real anvil with the protocol and the OEM connections (tests/support/oem_chain.py),
    one per module; tests that change it take `chain` instead."""
    directory = tmp_path_factory.mktemp("chain")
    node = AnvilNode(log_dir=directory)
    try:
        yield identity_chain(node, directory / "deployments")
    finally:
        node.stop()


@pytest.fixture
def chain(chain_base: IdentityChain) -> Iterator[IdentityChain]:
    """The module's identity chain, reverted to how the test found it when it ends."""
    with chain_base.reverted():
        yield chain_base
