"""The chain views the access rule needs beyond the projections: `Staking.isActive` for
operators (stake, slashes and the lockup curve are the chain's arithmetic, read at the
indexer's block) and `VehicleId.hasPermissions` for commands (on the latest block)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from workers.config import Settings
from workers.contracts import Manifest, load_artifact
from workers.protocol import Role


@dataclass
class ChainViews:
    """Read-only contract calls over one HTTP provider (thread-safe: web3 calls are)."""

    rpc_url: str
    manifest: Manifest
    timeout: float = 10.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainViews:
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.rpc_timeout}))
        manifest = Manifest.read(settings.manifest_file(w3.eth.chain_id))
        return cls(settings.rpc_url, manifest, settings.rpc_timeout)

    @cached_property
    def w3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": self.timeout}))

    def contract(self, name: str) -> Contract:
        return self.w3.eth.contract(
            address=to_checksum_address(self.manifest.address(name)), abi=load_artifact(name).abi
        )

    @cached_property
    def staking(self) -> Contract:
        return self.contract("Staking")

    @cached_property
    def vehicle_id(self) -> Contract:
        return self.contract("VehicleId")

    @cached_property
    def aftermarket_device(self) -> Contract:
        return self.contract("AftermarketDevice")

    @cached_property
    def marketplace(self) -> Contract:
        return self.contract("Marketplace")

    @property
    def chain_id(self) -> int:
        return self.manifest.chain_id

    def operator_active(self, operator: str, block: Any = "latest") -> bool:
        return bool(
            self.staking.functions.isActive(to_checksum_address(operator), Role.OPERATOR).call(
                block_identifier=block
            )
        )

    def has_permissions(self, vehicle_id: int, account: str, mask: int, block: Any = "latest") -> bool:
        return bool(
            self.vehicle_id.functions.hasPermissions(vehicle_id, to_checksum_address(account), mask).call(
                block_identifier=block
            )
        )
