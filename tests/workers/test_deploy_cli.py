"""`make deploy`'s entry point against a real anvil: deploys, writes the manifest,
refuses a second deployment with a clear message, replaces it only when asked; a production
deployment leaves every role with the DAO's timelock or a configured hot key, none with the
deployer."""

from __future__ import annotations

import json
import subprocess
import sys

from eth_account import Account

from devkit.deployment import ANVIL_DEPLOYER_KEY, GOVERNED, GOVERNOR, TIMELOCK, TIMELOCK_ROLES, ZERO_ADDRESS
from tests.support.anvil import AnvilNode, free_port
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.config import PRODUCTION_GOVERNANCE, PROJECT_ROOT
from workers.protocol import (
    DEFAULT_ADMIN_ROLE,
    GOVERNOR_ROLE,
    GUARDIAN_ROLE,
    MARKET_ROLE,
    SETTLER_ROLE,
    SLASHER_ROLE,
)


def run_deploy(
    url: str, out_dir: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.deploy", "--rpc-url", url, "--out-dir", out_dir, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
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


def _role_ids(contract) -> dict[str, bytes]:
    """Every role id `contract` exposes (its `*_ROLE()` getters)."""
    names = [item["name"] for item in contract.abi if item.get("type") == "function"]
    return {name: getattr(contract.functions, name)().call() for name in names if name.endswith("_ROLE")}


def test_a_production_deploy_leaves_the_deployer_no_role(anvil: AnvilNode, tmp_path):
    """`make deploy PRODUCTION=1`: the timelock is every contract's default admin and governor,
    the configured settler settles, the DAO and the configured council slash, the configured
    guardian guards, and the deployer holds no role anywhere."""
    settler, council, guardian = (Account.create().address for _ in range(3))
    env = {"SETTLER_ADDRESS": settler, "SLASHER_ADDRESS": council, "GUARDIAN_ADDRESS": guardian}
    done = run_deploy(anvil.url, str(tmp_path), "--production", env=env)
    assert done.returncode == 0, done.stderr
    manifest = Manifest.read(tmp_path / "local.json")
    deployer = Account.from_key(ANVIL_DEPLOYER_KEY).address
    timelock = manifest.address(TIMELOCK)
    w3 = anvil.w3
    checked = 0
    for name, address in manifest.contracts.items():
        contract = w3.eth.contract(address=address, abi=load_artifact(name).abi)
        for role_name, role in _role_ids(contract).items():
            assert not contract.functions.hasRole(role, deployer).call(), f"deployer kept {name}.{role_name}"
            checked += 1
        if name in GOVERNED:
            assert contract.functions.defaultAdmin().call() == timelock
            assert contract.functions.pendingDefaultAdmin().call()[0] == ZERO_ADDRESS
            assert contract.functions.hasRole(GOVERNOR_ROLE, timelock).call()
    assert checked >= 2 * len(GOVERNED) + len(TIMELOCK_ROLES)
    market = w3.eth.contract(address=manifest.address("Marketplace"), abi=load_artifact("Marketplace").abi)
    staking = w3.eth.contract(address=manifest.address("Staking"), abi=load_artifact("Staking").abi)
    assert market.functions.hasRole(SETTLER_ROLE, settler).call()
    assert staking.functions.hasRole(SLASHER_ROLE, timelock).call()
    assert staking.functions.hasRole(SLASHER_ROLE, council).call()
    assert staking.functions.hasRole(GUARDIAN_ROLE, guardian).call()
    assert market.functions.hasRole(GUARDIAN_ROLE, guardian).call()
    assert manifest.roles["Marketplace"]["GUARDIAN_ROLE"] == [guardian]
    assert staking.functions.hasRole(MARKET_ROLE, manifest.address("Marketplace")).call()
    timelock_c = w3.eth.contract(address=timelock, abi=load_artifact(TIMELOCK).abi)
    governor = manifest.address(GOVERNOR)
    assert timelock_c.functions.getMinDelay().call() == PRODUCTION_GOVERNANCE.timelock_delay
    assert timelock_c.functions.hasRole(_role_ids(timelock_c)["PROPOSER_ROLE"], governor).call()
    assert timelock_c.functions.hasRole(DEFAULT_ADMIN_ROLE, timelock).call()
    assert manifest.roles["Marketplace"]["SETTLER_ROLE"] == [settler]
    gov = w3.eth.contract(address=governor, abi=load_artifact(GOVERNOR).abi)
    assert gov.functions.votingPeriod().call() == PRODUCTION_GOVERNANCE.voting_period
    assert gov.functions.timelock().call() == timelock


def test_a_devnet_deploy_keeps_the_deployer_a_governor_but_never_the_admin(anvil: AnvilNode, tmp_path):
    done = run_deploy(anvil.url, str(tmp_path))
    assert done.returncode == 0, done.stderr
    manifest = Manifest.read(tmp_path / "local.json")
    deployer = Account.from_key(ANVIL_DEPLOYER_KEY).address
    for name in GOVERNED:
        contract = anvil.w3.eth.contract(address=manifest.address(name), abi=load_artifact(name).abi)
        assert contract.functions.defaultAdmin().call() == manifest.address(TIMELOCK)
        assert not contract.functions.hasRole(DEFAULT_ADMIN_ROLE, deployer).call()
        assert contract.functions.hasRole(GOVERNOR_ROLE, deployer).call()


def test_a_production_deploy_refuses_to_make_the_deployer_a_hot_key(anvil: AnvilNode, tmp_path):
    """SETTLER_KEY left at its devnet default is the deployer's key: refused before any deploy."""
    refused = run_deploy(anvil.url, str(tmp_path), "--production")
    assert refused.returncode == 2
    assert "the settler of a production deployment is the deployer" in refused.stderr
    assert not (tmp_path / "local.json").exists()
