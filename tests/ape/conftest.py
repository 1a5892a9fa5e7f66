"""Suites run by `ape test`: ape's foundry provider starts anvil; the deployment is the
project's own deploy (workers.deployment) through that provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.contracts import Manifest
from workers.deployment import ANVIL_DEPLOYER_KEY, deploy_all


@pytest.fixture(scope="module")
def manifest(chain, tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, Path]:
    """Every contract deployed once per module; tests isolate through ape's snapshots."""
    directory = tmp_path_factory.mktemp("deployments")
    return deploy_all(chain.provider.web3, ANVIL_DEPLOYER_KEY, directory=directory, redeploy=True)
