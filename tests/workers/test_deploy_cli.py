"""`make deploy`'s entry point against a real anvil: deploys, writes the manifest,
refuses a second deployment with a clear message, replaces it only when asked."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.anvil import AnvilNode, free_port
from workers.config import PROJECT_ROOT


def run_deploy(url: str, out_dir: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.deploy", "--rpc-url", url, "--out-dir", out_dir, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT)},
        check=False,
        timeout=120,
    )


def test_deploy_refuses_twice_then_redeploys(anvil: AnvilNode, tmp_path):
    first = run_deploy(anvil.url, str(tmp_path))
    assert first.returncode == 0, first.stderr
    manifest = json.loads((tmp_path / "local.json").read_text())
    assert manifest["chain_id"] == 31337
    for address in manifest["contracts"].values():
        assert len(anvil.w3.eth.get_code(address)) > 0

    second = run_deploy(anvil.url, str(tmp_path))
    assert second.returncode == 2
    assert "already has the deployment" in second.stderr
    assert json.loads((tmp_path / "local.json").read_text()) == manifest

    third = run_deploy(anvil.url, str(tmp_path), "--redeploy")
    assert third.returncode == 0, third.stderr
    replaced = json.loads((tmp_path / "local.json").read_text())
    assert replaced["contracts"]["DimoToken"] != manifest["contracts"]["DimoToken"]


def test_deploy_without_a_node_says_so(tmp_path):
    result = run_deploy(f"http://127.0.0.1:{free_port()}", str(tmp_path))
    assert result.returncode == 1
    assert "no JSON-RPC node answers" in result.stderr
    assert not (tmp_path / "local.json").exists()
