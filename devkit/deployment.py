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
from workers.config import DEPLOYMENTS_DIR, DEVNET_GOVERNANCE, PRODUCTION_GOVERNANCE, GovernanceParams
from workers.protocol import DIMO, ROLE_IDS

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_SALT = bytes(32)

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


class HotKeyIsDeployerError(ValueError):
    """A production deployment was asked to give a hot role to the deployer itself."""


@dataclass(frozen=True)
class Context:
    deployer: str
    addresses: dict[str, str]
    devnet: bool = True


@dataclass(frozen=True)
class DeployStep:
    """One contract and how its constructor arguments follow from what came before."""

    contract: str
    constructor_args: Callable[[Context], list[Any]]


@dataclass(frozen=True)
class RoleGrant:
    """`contract.grantRole(role, holder)`, sent by the timelock at deployment. `holder` is
    "deployer", a contract name ("Marketplace", "DimoTimelock"), or a hot key of HotKeys
    ("settler", "minter", "slasher", "guardian")."""

    contract: str
    role: str
    holder: str


@dataclass(frozen=True)
class HotKeys:
    """Where a production deployment sends the workers' operational roles."""

    settler: str
    #: None: nobody may mint without an oracle attestation.
    minter: str | None = None
    #: A slashing council beside the timelock: its `proposeSlash` freezes the target's stake at
    #: once, where a slash that goes through a proposal freezes only when the proposal executes.
    #: None: only the timelock slashes.
    slasher: str | None = None
    #: The guardian (Staking and Marketplace): a bounded pause, revoking a pending member root.
    #: None: no guardian until the DAO grants one.
    guardian: str | None = None


TIMELOCK = "DimoTimelock"
GOVERNOR = "DimoGovernor"
#: Contracts whose default admin and GOVERNOR_ROLE the timelock holds from their constructor.
GOVERNED: tuple[str, ...] = (
    "Treasury",
    "VehicleId",
    "AftermarketDevice",
    "Staking",
    "DataProducts",
    "Marketplace",
)


def _governance(devnet: bool) -> GovernanceParams:
    return DEVNET_GOVERNANCE if devnet else PRODUCTION_GOVERNANCE


# The order is the dependency order: each step sees the addresses of those above it. The
# timelock starts with no delay and the deployer as its bootstrap proposer, executor and admin;
# deploy_all sets its delay and hands it to the Governor before the deployer renounces.
STEPS: tuple[DeployStep, ...] = (
    DeployStep("DimoToken", lambda c: [c.deployer, INITIAL_SUPPLY]),
    DeployStep(TIMELOCK, lambda c: [0, [c.deployer], [c.deployer], c.deployer]),
    DeployStep("Treasury", lambda c: [c.addresses[TIMELOCK]]),
    DeployStep("VehicleId", lambda c: [c.addresses[TIMELOCK]]),
    DeployStep("AftermarketDevice", lambda c: [c.addresses["VehicleId"], c.addresses[TIMELOCK]]),
    DeployStep(
        "Staking", lambda c: [c.addresses["DimoToken"], c.addresses["Treasury"], c.addresses[TIMELOCK]]
    ),
    DeployStep(
        "DataProducts", lambda c: [c.addresses["VehicleId"], c.addresses["Staking"], c.addresses[TIMELOCK]]
    ),
    DeployStep(
        "Marketplace",
        lambda c: [
            c.addresses["DimoToken"],
            c.addresses["DataProducts"],
            c.addresses["Staking"],
            c.addresses["Treasury"],
            c.addresses[TIMELOCK],
        ],
    ),
    DeployStep(
        GOVERNOR,
        lambda c: [
            c.addresses["DimoToken"],
            c.addresses["Staking"],
            c.addresses[TIMELOCK],
            _governance(c.devnet).voting_delay,
            _governance(c.devnet).voting_period,
            _governance(c.devnet).proposal_threshold,
            _governance(c.devnet).quorum_percent,
        ],
    ),
)

# Every deployment: the Marketplace records buyers' usage on Staking.
_WIRING: tuple[RoleGrant, ...] = (RoleGrant("Staking", "MARKET_ROLE", "Marketplace"),)

# Devnet roles (DESIGN.md §5): the deployer is the workers' hot wallets and, beside the
# timelock, a governor of every contract, so the demo and `ape console` act in one line.
DEVNET_ROLE_GRANTS: tuple[RoleGrant, ...] = (
    *_WIRING,
    RoleGrant("VehicleId", "MINTER_ROLE", "deployer"),
    RoleGrant("Staking", "SLASHER_ROLE", "deployer"),
    RoleGrant("Staking", "SLASHER_ROLE", TIMELOCK),
    RoleGrant("Marketplace", "SETTLER_ROLE", "deployer"),
    *(RoleGrant(name, "GOVERNOR_ROLE", "deployer") for name in GOVERNED),
)

# Production roles: the DAO (its timelock) slashes; the settler and an optional minter,
# slashing council and guardian are configured hot keys; the deployer gets nothing.
PRODUCTION_ROLE_GRANTS: tuple[RoleGrant, ...] = (
    *_WIRING,
    RoleGrant("Staking", "SLASHER_ROLE", TIMELOCK),
    RoleGrant("Staking", "SLASHER_ROLE", "slasher"),
    RoleGrant("Marketplace", "SETTLER_ROLE", "settler"),
    RoleGrant("VehicleId", "MINTER_ROLE", "minter"),
    RoleGrant("Staking", "GUARDIAN_ROLE", "guardian"),
    RoleGrant("Marketplace", "GUARDIAN_ROLE", "guardian"),
)

#: Kept for readers of the devnet layout (tests, benchmarks).
ROLE_GRANTS = DEVNET_ROLE_GRANTS

# Roles the constructors give the timelock (their `governor` argument), recorded in the manifest.
CONSTRUCTOR_ROLES: dict[str, tuple[str, ...]] = {
    name: ("DEFAULT_ADMIN_ROLE", "GOVERNOR_ROLE") for name in GOVERNED
}
#: The timelock's own roles, by the name DimoTimelock exposes them under.
TIMELOCK_ROLES: tuple[str, ...] = ("PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE", "DEFAULT_ADMIN_ROLE")


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
    hot_keys: HotKeys | None = None,
) -> tuple[Manifest, Path]:
    """Deploys every contract of STEPS, has the timelock grant the roles and writes the manifest.

    `hot_keys` None is a devnet deployment (DEVNET_ROLE_GRANTS, DEVNET_GOVERNANCE); otherwise a
    production one (PRODUCTION_ROLE_GRANTS, PRODUCTION_GOVERNANCE) after which the deployer
    holds no role on any contract. Refuses with AlreadyDeployedError when the chain already
    holds the deployment the manifest describes, unless `redeploy` is set.
    """
    chain_id = w3.eth.chain_id
    path = manifest_path(network_name(chain_id), directory)
    current = existing_deployment(w3, path)
    if current is not None and not redeploy:
        raise AlreadyDeployedError(
            f"chain {chain_id} already has the deployment in {path} (block {current.block}); "
            "pass --redeploy (make deploy REDEPLOY=1) to deploy a new set and replace it"
        )

    devnet = hot_keys is None
    account: LocalAccount = Account.from_key(deployer_key)
    if hot_keys is not None:
        given = {
            "settler": hot_keys.settler,
            "minter": hot_keys.minter,
            "slasher": hot_keys.slasher,
            "guardian": hot_keys.guardian,
        }
        for name, address in given.items():
            if address is not None and Web3.to_checksum_address(address) == account.address:
                raise HotKeyIsDeployerError(
                    f"the {name} of a production deployment is the deployer {account.address}: "
                    f"set {name.upper()}_ADDRESS to another key (the deployer keeps no role)"
                )
    sender = Deployer(w3, account)
    start_block = w3.eth.block_number
    handles: dict[str, Contract] = {}
    for step in STEPS:
        ctx = Context(account.address, {k: c.address for k, c in handles.items()}, devnet)
        handles[step.contract] = sender.deploy(step.contract, step.constructor_args(ctx))
        log.info("deployed %s at %s", step.contract, handles[step.contract].address)

    timelock = handles[TIMELOCK]
    roles: dict[str, dict[str, list[str]]] = {
        name: {role: [timelock.address] for role in role_names}
        for name, role_names in CONSTRUCTOR_ROLES.items()
    }
    holders = {"deployer": account.address}
    if hot_keys is not None:
        holders["settler"] = Web3.to_checksum_address(hot_keys.settler)
        for name, address in (
            ("minter", hot_keys.minter),
            ("slasher", hot_keys.slasher),
            ("guardian", hot_keys.guardian),
        ):
            if address is not None:
                holders[name] = Web3.to_checksum_address(address)
    calls: list[tuple[str, bytes]] = []
    for grant in DEVNET_ROLE_GRANTS if devnet else PRODUCTION_ROLE_GRANTS:
        holder = handles[grant.holder].address if grant.holder in handles else holders.get(grant.holder)
        if holder is None:
            continue  # an optional hot key that is not configured
        contract = handles[grant.contract]
        calls.append((contract.address, _calldata(contract, "grantRole", ROLE_IDS[grant.role], holder)))
        roles.setdefault(grant.contract, {}).setdefault(grant.role, []).append(holder)
    params = _governance(devnet)
    calls.append((timelock.address, _calldata(timelock, "updateDelay", params.timelock_delay)))
    _bootstrap(sender, timelock, calls)
    roles[TIMELOCK] = _hand_timelock_to_governor(sender, timelock, handles[GOVERNOR].address)

    manifest = Manifest(
        chain_id=chain_id,
        block=start_block,
        contracts={name: c.address for name, c in handles.items()},
        deployer=account.address,
        roles=roles,
    )
    manifest.write(path)
    return manifest, path


def _calldata(contract: Contract, fn: str, *args: Any) -> bytes:
    return bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:])


def _bootstrap(sender: Deployer, timelock: Contract, calls: list[tuple[str, bytes]]) -> None:
    """Runs `calls` as one timelock batch while its delay is still zero (the last call sets it)."""
    targets = [target for target, _ in calls]
    values = [0] * len(calls)
    datas = [data for _, data in calls]
    sender.call(timelock, "scheduleBatch", targets, values, datas, ZERO_SALT, ZERO_SALT, 0)
    sender.call(timelock, "executeBatch", targets, values, datas, ZERO_SALT, ZERO_SALT)


def _hand_timelock_to_governor(sender: Deployer, timelock: Contract, governor: str) -> dict[str, list[str]]:
    """The Governor proposes and cancels, anyone executes a ready operation, the timelock
    administers itself; the deployer renounces its bootstrap roles."""
    role = {name: getattr(timelock.functions, name)().call() for name in TIMELOCK_ROLES}
    sender.call(timelock, "grantRole", role["PROPOSER_ROLE"], governor)
    sender.call(timelock, "grantRole", role["CANCELLER_ROLE"], governor)
    sender.call(timelock, "grantRole", role["EXECUTOR_ROLE"], ZERO_ADDRESS)
    deployer = sender.account.address
    for name in TIMELOCK_ROLES:
        sender.call(timelock, "renounceRole", role[name], deployer)
    return {
        "PROPOSER_ROLE": [governor],
        "CANCELLER_ROLE": [governor],
        "EXECUTOR_ROLE": [ZERO_ADDRESS],
        "DEFAULT_ADMIN_ROLE": [timelock.address],
    }
