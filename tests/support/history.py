"""Scripted chain activity for the indexer tests: every event of every deployed contract,
sent from anvil's unlocked accounts, plus random traffic for reorg tests."""

from __future__ import annotations

import random
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from tests.support.anvil import ANVIL_KEYS
from workers.contracts import Manifest, load_artifact

ACCOUNTS = [Account.from_key(k).address for k in ANVIL_KEYS]
DAO = ACCOUNTS[0]
DIMO = 10**18


class History:
    """Drives the deployment through its events and remembers who took part."""

    def __init__(self, w3: Web3, manifest: Manifest) -> None:
        self.w3 = w3
        self.manifest = manifest
        self.participants: set[str] = set(ACCOUNTS)
        self.role_candidates: set[tuple[str, str, str]] = set()

    def contract(self, name: str) -> Contract:
        return self.w3.eth.contract(address=self.manifest.address(name), abi=load_artifact(name).abi)

    def tx(self, name: str, fn: str, *args: Any, sender: str = DAO) -> Any:
        contract = self.contract(name)
        tx_hash = getattr(contract.functions, fn)(*args).transact({"from": sender, "gas": 5_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, f"{name}.{fn}{args} reverted"
        return receipt

    def has(self, name: str) -> bool:
        return name in self.manifest.contracts

    # --- DimoToken and Treasury -------------------------------------------------------------

    def token_and_treasury(self) -> None:
        treasury = self.manifest.address("Treasury")
        for i, account in enumerate(ACCOUNTS[1:6], start=1):
            self.tx("DimoToken", "transfer", account, 1_000 * i * DIMO)
        self.tx("DimoToken", "transfer", ACCOUNTS[2], 5 * DIMO, sender=ACCOUNTS[1])
        self.tx("DimoToken", "approve", treasury, 100 * DIMO, sender=ACCOUNTS[1])
        self.tx("Treasury", "deposit", self.manifest.address("DimoToken"), 60 * DIMO, sender=ACCOUNTS[1])
        self.tx("Treasury", "release", self.manifest.address("DimoToken"), ACCOUNTS[7], 15 * DIMO)
        self.tx("DimoToken", "delegate", ACCOUNTS[3], sender=ACCOUNTS[2])
        governor = self.contract("Treasury").functions.GOVERNOR_ROLE().call()
        self.tx("Treasury", "grantRole", governor, ACCOUNTS[8])
        self.tx("Treasury", "grantRole", governor, ACCOUNTS[9])
        self.tx("Treasury", "revokeRole", governor, ACCOUNTS[8])
        for account in (DAO, ACCOUNTS[8], ACCOUNTS[9]):
            self.role_candidates.add(("Treasury", "0x" + governor.hex(), account))

    def all(self) -> None:
        """Every event of every contract in the deployment."""
        self.token_and_treasury()

    # --- random traffic ------------------------------------------------------------------------

    def random_transfers(self, rng: random.Random, count: int) -> None:
        for _ in range(count):
            sender, receiver = rng.sample(ACCOUNTS[:6], 2)
            self.tx("DimoToken", "transfer", receiver, rng.randint(1, 10**6), sender=sender)

    def transfer_request(self, rng: random.Random) -> dict[str, Any]:
        """An unsent transfer (for anvil_reorg's replacement blocks)."""
        sender, receiver = rng.sample(ACCOUNTS[:6], 2)
        data = self.contract("DimoToken").encode_abi("transfer", [receiver, rng.randint(1, 10**6)])
        return {"from": sender, "to": self.manifest.address("DimoToken"), "data": data, "gas": 200_000}
