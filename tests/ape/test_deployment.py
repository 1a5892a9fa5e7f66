"""The deployment through ape's foundry provider: addresses hold code, roles are as
DESIGN.md §5 says, a second deploy refuses, and the console extras load the handles."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

import ape_console_extras
import devkit.console
from devkit.deployment import (
    ANVIL_DEPLOYER_KEY,
    INITIAL_SUPPLY,
    STEPS,
    AlreadyDeployedError,
    deploy_all,
)
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest, network_name

DEPLOYER = Account.from_key(ANVIL_DEPLOYER_KEY).address

# DESIGN.md §5: on a devnet the deployer is a governor beside the DAO's timelock (the only
# default admin) and the workers' hot wallets; Marketplace holds MARKET_ROLE on Staking.
# Holders are "deployer" or a contract name.
EXPECTED_ROLES: dict[str, dict[str, list[str]]] = {
    "Treasury": {"GOVERNOR_ROLE": ["deployer", "DimoTimelock"], "DEFAULT_ADMIN_ROLE": ["DimoTimelock"]},
    "VehicleId": {"GOVERNOR_ROLE": ["deployer"], "MINTER_ROLE": ["deployer"]},
    "AftermarketDevice": {"GOVERNOR_ROLE": ["deployer"]},
    "Staking": {"GOVERNOR_ROLE": ["deployer"], "SLASHER_ROLE": ["deployer"], "MARKET_ROLE": ["Marketplace"]},
    "DataProducts": {"GOVERNOR_ROLE": ["deployer"]},
    "Marketplace": {"GOVERNOR_ROLE": ["deployer"], "SETTLER_ROLE": ["deployer"]},
}


def handle(w3: Web3, manifest: Manifest, name: str):
    return w3.eth.contract(address=manifest.address(name), abi=load_artifact(name).abi)


def test_every_step_is_deployed_and_holds_code(manifest, chain):
    m, path = manifest
    w3 = chain.provider.web3
    assert path.name == f"{network_name(w3.eth.chain_id)}.json"
    assert Manifest.read(path) == m
    assert list(m.contracts) == [step.contract for step in STEPS]
    for name, address in m.contracts.items():
        code = w3.eth.get_code(address)
        assert len(code) > 2, f"{name} at {address} has no code"
        runtime = load_artifact(name)
        assert runtime.abi, name


def test_token_supply_goes_to_the_deployer(manifest, chain):
    m, _ = manifest
    token = handle(chain.provider.web3, m, "DimoToken")
    assert token.functions.totalSupply().call() == INITIAL_SUPPLY
    assert token.functions.balanceOf(DEPLOYER).call() == INITIAL_SUPPLY
    assert token.functions.symbol().call() == "DIMO"


def test_roles_are_as_design_says(manifest, chain):
    m, _ = manifest
    w3 = chain.provider.web3
    stranger = Account.create().address
    deployed = [name for name in m.contracts if name in EXPECTED_ROLES]
    assert "Treasury" in deployed
    for name in deployed:
        contract = handle(w3, m, name)
        for role_name, holders in EXPECTED_ROLES[name].items():
            role = getattr(contract.functions, role_name)().call()
            for holder in holders:
                if holder != "deployer" and holder not in m.contracts:
                    continue  # its contract is not part of the deployment yet
                address = DEPLOYER if holder == "deployer" else m.address(holder)
                assert contract.functions.hasRole(role, address).call(), f"{name}.{role_name} -> {holder}"
                assert address in m.roles[name][role_name], f"manifest misses {name}.{role_name}"
            assert not contract.functions.hasRole(role, stranger).call()


def test_second_deploy_refuses_unless_redeploy(manifest, chain):
    m, path = manifest
    w3 = chain.provider.web3
    with pytest.raises(AlreadyDeployedError, match="already has the deployment"):
        deploy_all(w3, ANVIL_DEPLOYER_KEY, directory=path.parent)
    assert Manifest.read(path) == m


def test_console_extras_load_the_handles(manifest, chain, monkeypatch, capsys):
    m, path = manifest
    monkeypatch.setattr(devkit.console, "manifest_path", lambda network: path)
    namespace = ape_console_extras.ape_init_extras(chain)
    assert "deployment of chain" in capsys.readouterr().out
    for name, console_name in devkit.console.HANDLE_NAMES.items():
        if name in m.contracts:
            assert namespace[console_name].address == m.address(name)
    # a governance action is one line
    token, treasury, send = namespace["token"], namespace["treasury"], namespace["send"]
    send(token.functions.transfer(treasury.address, 7))
    receipt = send(treasury.functions.release(token.address, DEPLOYER, 7))
    assert receipt["status"] == 1
    assert token.functions.balanceOf(treasury.address).call() == 0
