"""Deploys every protocol contract, wires the roles between them and writes the manifest
(DESIGN.md §5). Used by `make deploy`, `ape run deploy`, the demo and the tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest, manifest_path, network_name
from workers.config import DEPLOYMENTS_DIR
from workers.protocol import DIMO, ROLE_IDS

log = logging.getLogger(__name__)

#: anvil's first test account (mnemonic "test test … junk"): the devnet deployer and DAO.
ANVIL_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#: The initial DIMO supply minted to the deployer on a devnet.
INITIAL_SUPPLY = 1_000_000_000 * DIMO
#: Gas limit for each deployment or wiring transaction.
TX_GAS_LIMIT = 15_000_000
#: Tip per gas on deployment transactions (wei); devnets need none to speak of.
PRIORITY_FEE = 1_000_000_000


class AlreadyDeployedError(RuntimeError):
    """The chain already has this network's deployment."""


class DeploymentTxError(RuntimeError):
    """A deployment or wiring transaction reverted."""


@dataclass(frozen=True)
class Context:
    deployer: str
    addresses: dict[str, str]


@dataclass(frozen=True)
class DeployStep:
    """One contract and how its constructor arguments follow from what came before."""

    contract: str
    constructor_args: Callable[[Context], list[Any]]


@dataclass(frozen=True)
class RoleGrant:
    """`contract.grantRole(role, holder)`, where holder is the deployer or another contract."""

    contract: str
    role: str
    holder: str  # "deployer" or a contract name


# The order is the dependency order: each step sees the addresses of those above it.
STEPS: tuple[DeployStep, ...] = (
    DeployStep("DimoToken", lambda c: [c.deployer, INITIAL_SUPPLY]),
    DeployStep("Treasury", lambda c: [c.deployer]),
    DeployStep("VehicleId", lambda c: [c.deployer]),
    DeployStep("AftermarketDevice", lambda c: [c.addresses["VehicleId"], c.deployer]),
    DeployStep("Staking", lambda c: [c.addresses["DimoToken"], c.addresses["Treasury"], c.deployer]),
    DeployStep("DataProducts", lambda c: [c.addresses["VehicleId"], c.addresses["Staking"], c.deployer]),
    DeployStep(
        "Marketplace",
        lambda c: [
            c.addresses["DimoToken"],
            c.addresses["DataProducts"],
            c.addresses["Staking"],
            c.addresses["Treasury"],
            c.deployer,
        ],
    ),
)

# Devnet roles (DESIGN.md §5): the deployer is the DAO and the workers' hot wallets.
ROLE_GRANTS: tuple[RoleGrant, ...] = (
    RoleGrant("VehicleId", "MINTER_ROLE", "deployer"),
    RoleGrant("Staking", "SLASHER_ROLE", "deployer"),
    RoleGrant("Staking", "MARKET_ROLE", "Marketplace"),
    RoleGrant("Marketplace", "SETTLER_ROLE", "deployer"),
)

# Roles the constructors give the `governor` argument, recorded in the manifest.
CONSTRUCTOR_ROLES: dict[str, tuple[str, ...]] = {
    "Treasury": ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"),
    "Staking": ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"),
    "VehicleId": ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"),
    "AftermarketDevice": ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"),
    "DataProducts": ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"),
    "Marketplace": ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE"),
}


class Deployer:
    """Sends signed transactions from one key, one at a time, each confirmed before the next."""

    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account

    def send(self, tx: dict[str, Any], what: str) -> Any:
        # Each send waits for its receipt, so the chain's pending count is the next nonce, even
        # when another sender of the same key (a console, a test's snapshot revert) moved it.
        nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
        tx = {
            **{k: v for k, v in tx.items() if k not in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")},
            "from": self.account.address,
            "nonce": nonce,
            "chainId": self.w3.eth.chain_id,
            "gas": TX_GAS_LIMIT,
        }
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
        tx["maxFeePerGas"] = base_fee * 2 + PRIORITY_FEE
        tx["maxPriorityFeePerGas"] = PRIORITY_FEE
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise DeploymentTxError(f"{what} reverted (tx {tx_hash.hex()})")
        return receipt

    def deploy(self, name: str, args: list[Any]) -> Contract:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        receipt = self.send(
            factory.constructor(*args).build_transaction({"gas": TX_GAS_LIMIT}), f"deploy {name}"
        )
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)

    def call(self, contract: Contract, fn: str, *args: Any) -> Any:
        tx = getattr(contract.functions, fn)(*args).build_transaction({"gas": TX_GAS_LIMIT})
        return self.send(tx, f"{fn}{args}")


def existing_deployment(w3: Web3, path: Path) -> Manifest | None:
    """The manifest at `path` if the connected chain still holds its contracts."""
    if not path.exists():
        return None
    manifest = Manifest.read(path)
    if manifest.chain_id != w3.eth.chain_id:
        return None
    if all(len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0 for a in manifest.contracts.values()):
        return manifest
    return None


def deploy_all(
    w3: Web3,
    deployer_key: str = ANVIL_DEPLOYER_KEY,
    *,
    redeploy: bool = False,
    directory: Path = DEPLOYMENTS_DIR,
) -> tuple[Manifest, Path]:
    """Deploys every contract of STEPS, grants ROLE_GRANTS and writes the manifest.

    Refuses with AlreadyDeployedError when the chain already holds the deployment the
    manifest describes, unless `redeploy` is set.
    """
    chain_id = w3.eth.chain_id
    path = manifest_path(network_name(chain_id), directory)
    current = existing_deployment(w3, path)
    if current is not None and not redeploy:
        raise AlreadyDeployedError(
            f"chain {chain_id} already has the deployment in {path} (block {current.block}); "
            "pass --redeploy (make deploy REDEPLOY=1) to deploy a new set and replace it"
        )

    account: LocalAccount = Account.from_key(deployer_key)
    sender = Deployer(w3, account)
    start_block = w3.eth.block_number
    handles: dict[str, Contract] = {}
    for step in STEPS:
        ctx = Context(deployer=account.address, addresses={k: c.address for k, c in handles.items()})
        handles[step.contract] = sender.deploy(step.contract, step.constructor_args(ctx))
        log.info("deployed %s at %s", step.contract, handles[step.contract].address)

    roles: dict[str, dict[str, list[str]]] = {
        name: {role: [account.address] for role in role_names}
        for name, role_names in CONSTRUCTOR_ROLES.items()
    }
    for grant in ROLE_GRANTS:
        contract = handles[grant.contract]
        holder = account.address if grant.holder == "deployer" else handles[grant.holder].address
        sender.call(contract, "grantRole", ROLE_IDS[grant.role], holder)
        roles.setdefault(grant.contract, {}).setdefault(grant.role, []).append(holder)

    manifest = Manifest(
        chain_id=chain_id,
        block=start_block,
        contracts={name: c.address for name, c in handles.items()},
        deployer=account.address,
        roles=roles,
    )
    manifest.write(path)
    return manifest, path
