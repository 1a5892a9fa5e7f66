"""A chain for the OEM and device tests: anvil with VehicleId and AftermarketDevice (from the
protocol deployment when it includes them, deployed here otherwise), OEM connections whose
oracle is the workers' ORACLE_KEY, and transaction helpers per account."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from devkit.deployment import ANVIL_DEPLOYER_KEY, Deployer, deploy_all
from devkit.oem_connections import register_connections
from tests.support.anvil import ANVIL_KEYS, AnvilNode
from workers import eip712
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.config import get_settings
from workers.protocol import MINTER_ROLE


@dataclass
class IdentityChain:
    node: AnvilNode
    vehicle_id: Contract
    device: Contract
    senders: dict[str, Deployer]
    manifest: Manifest | None = None
    manifest_file: Path | None = None

    @property
    def w3(self) -> Web3:
        return self.node.w3

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    @contextmanager
    def reverted(self) -> Iterator[IdentityChain]:
        """This chain, put back as it was (evm_snapshot / evm_revert) when the block ends."""
        snapshot = self.node.snapshot()
        self.senders.clear()
        try:
            yield self
        finally:
            self.node.revert(snapshot)
            self.senders.clear()

    def sender(self, key: str) -> Deployer:
        if key not in self.senders:
            self.senders[key] = Deployer(self.w3, Account.from_key(key))
        return self.senders[key]

    def send(self, key: str, contract: Contract, fn: str, *args: Any) -> Any:
        """`contract.fn(*args)` from `key`'s account; the receipt (DeploymentTxError on revert)."""
        return self.sender(key).call(contract, fn, *args)

    def reverts(self, key: str, contract: Contract, fn: str, *args: Any) -> bool:
        try:
            getattr(contract.functions, fn)(*args).call({"from": Account.from_key(key).address})
        except Exception:
            return True
        return False

    def mint_device(self, owner: str, signer_key: str, serial: bytes) -> int:
        signer = Account.from_key(signer_key).address
        receipt = self.send(ANVIL_DEPLOYER_KEY, self.device, "mintDevice", owner, signer, Web3.keccak(serial))
        return self.device.events.DeviceMinted().process_receipt(receipt, errors=DISCARD)[0]["args"][
            "deviceId"
        ]

    def pair(self, owner_key: str, vehicle_id: int, device_id: int, signer_key: str) -> None:
        signer = Account.from_key(signer_key).address
        domain = eip712.domain(eip712.DEVICE_DOMAIN, self.chain_id, self.device.address)
        deadline = int(time.time()) + 3600
        nonce = eip712.free_nonce(self.device, signer)
        data = eip712.pair(domain, vehicle_id=vehicle_id, device_id=device_id, nonce=nonce, deadline=deadline)
        self.send(
            owner_key,
            self.device,
            "pair",
            vehicle_id,
            device_id,
            nonce,
            deadline,
            eip712.sign(data, signer_key),
        )

    def mint_vehicle(self, owner: str, connection_id: int, vin_hash: bytes) -> int:
        receipt = self.send(ANVIL_DEPLOYER_KEY, self.vehicle_id, "mint", owner, connection_id, vin_hash)
        return self.vehicle_id.events.VehicleMinted().process_receipt(receipt, errors=DISCARD)[0]["args"][
            "vehicleId"
        ]


def identity_chain(node: AnvilNode, directory: Any) -> IdentityChain:
    """VehicleId + AftermarketDevice on `node`, connections 1 "smartcar" and 2 "tesla" whose
    oracle is the workers' ORACLE_KEY (register_connections), the deployer a manufacturer."""
    manifest, manifest_file = deploy_all(node.w3, ANVIL_DEPLOYER_KEY, directory=directory)
    chain = IdentityChain(node, None, None, {}, manifest, manifest_file)  # type: ignore[arg-type]
    deployer = chain.sender(ANVIL_DEPLOYER_KEY)
    governor = deployer.account.address
    if "VehicleId" in manifest.contracts:
        artifact = load_artifact("VehicleId")
        chain.vehicle_id = node.w3.eth.contract(address=manifest.address("VehicleId"), abi=artifact.abi)
    else:
        chain.vehicle_id = deployer.deploy("VehicleId", [governor])
        manifest.contracts["VehicleId"] = chain.vehicle_id.address
        chain.send(ANVIL_DEPLOYER_KEY, chain.vehicle_id, "grantRole", MINTER_ROLE, governor)
    if "AftermarketDevice" in manifest.contracts:
        artifact = load_artifact("AftermarketDevice")
        chain.device = node.w3.eth.contract(address=manifest.address("AftermarketDevice"), abi=artifact.abi)
    else:
        chain.device = deployer.deploy("AftermarketDevice", [chain.vehicle_id.address, governor])
        manifest.contracts["AftermarketDevice"] = chain.device.address
    register_connections(
        chain.vehicle_id, deployer, get_settings().model_copy(update={"oem_connections": []})
    )
    chain.send(ANVIL_DEPLOYER_KEY, chain.device, "setManufacturer", governor, True)
    return chain


class ChainWorld(Protocol):
    """A test module's cast on the module's identity chain."""

    chain: IdentityChain


W = TypeVar("W", bound=ChainWorld)


def world_fixtures(make: Callable[[IdentityChain], W]) -> tuple[Any, Any]:
    """A test module's `world_base` fixture (`make` run once on the module's `chain_base`) and
    its `world` fixture (that world, the chain reverted to it when each test ends):
    `world_base, world = world_fixtures(World)`."""

    @pytest.fixture(scope="module")
    def world_base(chain_base: IdentityChain) -> W:
        return make(chain_base)

    @pytest.fixture
    def world(world_base: W) -> Iterator[W]:
        with world_base.chain.reverted():
            yield world_base

    return world_base, world


OWNER_KEY = ANVIL_KEYS[3]
OTHER_KEY = ANVIL_KEYS[4]
RELAYER_KEY = ANVIL_KEYS[5]


def mint_with_attestation(sender: Deployer, vehicles: Contract, attestation: dict[str, Any]) -> int:
    """`VehicleId.mintWithAttestation` with the oracle's answer (the callback's JSON), sent by
    `sender` (a relayer pays the gas; the NFT goes to `to`); the minted vehicle's id."""
    receipt = sender.call(
        vehicles,
        "mintWithAttestation",
        attestation["to"],
        attestation["connection_id"],
        bytes.fromhex(attestation["vin_hash"][2:]),
        attestation["nonce"],
        attestation["deadline"],
        bytes.fromhex(attestation["signature"][2:]),
    )
    minted = vehicles.events.VehicleMinted().process_receipt(receipt, errors=DISCARD)
    return int(minted[0]["args"]["vehicleId"])


def submit_attestation(chain: IdentityChain, attestation: dict[str, Any], key: str = RELAYER_KEY) -> int:
    """mint_with_attestation on `chain`, relayed from `key`'s account."""
    return mint_with_attestation(chain.sender(key), chain.vehicle_id, attestation)
