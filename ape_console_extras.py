"""`ape console` opens with the deployment of the connected chain loaded.

Handles (web3 contract objects, so calls read `token.functions.balanceOf(a).call()` and
governance actions are one line through `send`):

    token, treasury, ...        contract handles from deployments/<network>.json
    send(contract.functions.f(args))   sign with the deployer (DEPLOYER_KEY) and wait
    dao                         the deployer account (the devnet DAO)

Each later module adds its helpers in its own section below.
"""

from __future__ import annotations

import os
from typing import Any

from eth_account import Account
from web3 import Web3

from workers import eip712
from workers.access import permissions
from workers.contracts import Manifest, load_artifact, manifest_path, network_name
from workers.deployment import ANVIL_DEPLOYER_KEY, Deployer

#: Console name of each deployed contract.
HANDLE_NAMES = {
    "DimoToken": "token",
    "Treasury": "treasury",
    "VehicleId": "vehicles",
    "AftermarketDevice": "devices",
    "Staking": "staking",
    "DataProducts": "products",
    "Marketplace": "market",
}


def load_handles(w3: Web3, manifest: Manifest) -> dict[str, Any]:
    """Contract handles for every contract of the manifest, by console name."""
    return {
        HANDLE_NAMES.get(name, name): w3.eth.contract(address=address, abi=load_artifact(name).abi)
        for name, address in manifest.contracts.items()
    }


def build_namespace(w3: Web3, manifest: Manifest, deployer_key: str = ANVIL_DEPLOYER_KEY) -> dict[str, Any]:
    """Everything `ape console` starts with; also used by tests and scripts."""
    dao = Deployer(w3, Account.from_key(deployer_key))

    def send(call: Any, sender: Deployer | None = None) -> Any:
        """Signs and sends a prepared contract call (`contract.functions.f(...)`), returns the receipt."""
        who = sender or dao
        who.nonce = w3.eth.get_transaction_count(who.account.address, "pending")
        return who.send(call.build_transaction({"gas": 15_000_000}), call.fn_name)

    namespace: dict[str, Any] = {"w3": w3, "manifest": manifest, "dao": dao, "send": send}
    namespace.update(load_handles(w3, manifest))
    namespace.update(identity_helpers(w3, namespace))
    return namespace


# ---------------------------------------------------------------- identity (VehicleId, AftermarketDevice)


def identity_helpers(w3: Web3, handles: dict[str, Any]) -> dict[str, Any]:
    """`vin_hash("5YJ3E1EA7KF317000")`, `perms.TELEMETRY | perms.LOCATION`, `eip712.grant(...)`,
    and the EIP-712 domains of `vehicles` and `devices` to sign typed messages against:

        doc = eip712.grant(vehicle_domain, vehicle_id=1, grantee=app, permissions=perms.LOCK,
                           expires_at=2**64 - 1, terms_hash=bytes(32), nonce=0, deadline=...)
        send(vehicles.functions.grantBySig(1, app, perms.LOCK, 2**64 - 1, bytes(32), owner,
                                           deadline, eip712.sign(doc, owner_key)))
    """
    helpers: dict[str, Any] = {"vin_hash": eip712.vin_hash, "eip712": eip712, "perms": permissions}
    chain_id = w3.eth.chain_id
    if "vehicles" in handles:
        helpers["vehicle_domain"] = eip712.domain(
            eip712.VEHICLE_DOMAIN, chain_id, handles["vehicles"].address
        )
    if "devices" in handles:
        helpers["device_domain"] = eip712.domain(eip712.DEVICE_DOMAIN, chain_id, handles["devices"].address)
    return helpers


def ape_init_extras(chain: Any) -> dict[str, Any]:
    """Called by `ape console`: loads deployments/<network>.json for the connected chain."""
    w3 = chain.provider.web3
    path = manifest_path(network_name(w3.eth.chain_id))
    if not path.exists():
        print(f"no deployment for chain {w3.eth.chain_id} at {path}: run `make deploy` first")
        return {}
    manifest = Manifest.read(path)
    namespace = build_namespace(w3, manifest, os.environ.get("DEPLOYER_KEY", ANVIL_DEPLOYER_KEY))
    loaded = ", ".join(sorted(k for k in namespace if k in HANDLE_NAMES.values()))
    print(f"deployment of chain {manifest.chain_id} loaded: {loaded}")
    return namespace
