"""Suites run by `ape test`: ape's foundry provider starts anvil; the deployment is the
project's own deploy (devkit.deployment) through that provider; `ape console`'s namespace
on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ape_console_extras
from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from workers.chain.deployment import Manifest


@pytest.fixture(scope="module")
def manifest(chain, tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, Path]:
    """Every contract deployed once per module; tests isolate through ape's snapshots."""
    directory = tmp_path_factory.mktemp("deployments")
    return deploy_all(chain.provider.web3, ANVIL_DEPLOYER_KEY, directory=directory, redeploy=True)


@pytest.fixture
def console(manifest, chain, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """What `ape console` starts with, finding the deployment through DEPLOYMENT_FILE, run in
    tmp_path (the slash CSV and its tree are written where the console runs)."""
    _, path = manifest
    monkeypatch.setenv("DEPLOYMENT_FILE", str(path))
    monkeypatch.chdir(tmp_path)
    return dict(ape_console_extras.ape_init_extras(chain))
