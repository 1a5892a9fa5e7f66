"""Fixtures shared by every pytest suite: real anvil nodes and fresh deployments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from tests.support.anvil import AnvilNode
from workers.chain.deployment import Manifest


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[AnvilNode]:
    """A fresh anvil for one test."""
    node = AnvilNode(log_dir=tmp_path)
    yield node
    node.stop()


@pytest.fixture
def deployment(anvil: AnvilNode, tmp_path: Path) -> tuple[AnvilNode, Manifest, Path]:
    """A fresh anvil with every protocol contract deployed; the manifest lives in tmp_path."""
    manifest, path = deploy_all(anvil.w3, ANVIL_DEPLOYER_KEY, directory=tmp_path / "deployments")
    return anvil, manifest, path
