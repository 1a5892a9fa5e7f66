"""The chain views the access rule needs beyond the projections: `Staking.isActive` for
operators and buyers (stake, slashes and the lockup curve are the chain's arithmetic, read
at the indexer's block) and `VehicleId.hasPermissions` for commands (on the latest block).

They are methods of `Chain`, the workers' one handle of a connected chain and its verified
deployment (built by `workers.chain.deployment.connect`): the JSON-RPC client and web3
contract handles with ABIs from the compiled artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from workers.chain.artifacts import load_artifact
from workers.chain.rpc import Rpc
from workers.protocol import Role

if TYPE_CHECKING:
    from workers.chain.deployment import Manifest


@dataclass
class Chain:
    """One connected chain with its verified deployment (thread-safe: web3 calls are)."""

    rpc: Rpc
    w3: Web3
    manifest: Manifest
    manifest_file: Path
    chain_id: int
    _contracts: dict[str, Contract] = field(default_factory=dict, repr=False)

    def contract(self, name: str) -> Contract:
        """A web3 handle of the deployed contract `name`, ABI from the compiled artifacts."""
        if name not in self._contracts:
            address = to_checksum_address(self.manifest.address(name))
            self._contracts[name] = self.w3.eth.contract(address=address, abi=load_artifact(name).abi)
        return self._contracts[name]

    @property
    def vehicle_id(self) -> Contract:
        return self.contract("VehicleId")

    @property
    def aftermarket_device(self) -> Contract:
        return self.contract("AftermarketDevice")

    def is_active(self, account: str, role: Role, block: Any = "latest") -> bool:
        """`Staking.isActive(account, role)`: whitelisted and staked at least the required stake."""
        return bool(
            self.contract("Staking")
            .functions.isActive(to_checksum_address(account), role)
            .call(block_identifier=block)
        )

    def has_permissions(self, vehicle_id: int, account: str, mask: int, block: Any = "latest") -> bool:
        return bool(
            self.vehicle_id.functions.hasPermissions(vehicle_id, to_checksum_address(account), mask).call(
                block_identifier=block
            )
        )
