"""Scripted chain activity for the indexer tests: every event of every deployed contract,
sent from anvil's unlocked accounts, plus random traffic for reorg tests."""

from __future__ import annotations

import random
from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.support.anvil import ANVIL_KEYS
from workers import eip712
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.merkle import ClaimTree, PayoutTree
from workers.protocol import (
    DIMO,
    GOVERNOR_ROLE,
    GUARDIAN_ROLE,
    MONTH_SECONDS,
    NO_END,
    SETTLER_ROLE,
    UINT256_MAX,
    ZERO_ADDRESS,
    Kind,
    Role,
    SlashSubject,
    Tier,
    Use,
    uses_mask,
)
from workers.protocol.permissions import DRIVE, LOCATION, LOCK, MANAGE_KEYS, TELEMETRY, UNLOCK
from workers.protocol.terms import terms as base_terms

ACCOUNTS = [Account.from_key(k).address for k in ANVIL_KEYS]
DAO = ACCOUNTS[0]
DAY = 24 * 3600
#: The cast of the protocol story (anvil accounts; DAO = accounts[0] holds every devnet role).
OWNERS = ACCOUNTS[1:5]
OPERATOR, BROKER, STEWARD, CONSUMER = ACCOUNTS[5], ACCOUNTS[6], ACCOUNTS[7], ACCOUNTS[8]
ORACLE_KEY = ANVIL_KEYS[9]
MANUFACTURER = ACCOUNTS[9]
DEVICE_KEYS = [keccak(text=f"device {i}") for i in range(3)]


def terms(kind: int, price: int, **changes: Any) -> tuple:
    """IDataProducts.Terms as the ABI tuple (70/20/5 and the default 5% fee)."""
    fields = {
        "permittedUses": uses_mask(Use.INSURANCE, Use.RESEARCH),
        "minCohort": 2 if kind in (Kind.DATASET, Kind.BUNDLE) else 0,
    }
    return base_terms(kind, price, **{**fields, **changes})


class History:
    """Drives the deployment through its events and remembers who took part."""

    def __init__(self, w3: Web3, manifest: Manifest) -> None:
        self.w3 = w3
        self.manifest = manifest
        self.participants: set[str] = set(ACCOUNTS)
        self.role_candidates: set[tuple[str, str, str]] = set()
        self.vehicles: list[int] = []
        self.device_ids: list[int] = []
        self.products: list[int] = []
        #: The (productIds, cumulativeTaken) of the last proposed root.
        self.pending_takes: tuple[list[int], list[int]] = ([], [])

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

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def event_arg(self, receipt: Any, name: str, event: str, arg: str) -> Any:
        logs = getattr(self.contract(name).events, event)().process_receipt(receipt, errors=DISCARD)
        return logs[0]["args"][arg]

    def chain_id(self) -> int:
        return self.w3.eth.chain_id

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
        # The devnet deployer is a governor (only the timelock makes governors): it rotates the
        # operational roles GOVERNOR_ROLE administers.
        self.tx("Marketplace", "grantRole", SETTLER_ROLE, ACCOUNTS[8])
        self.tx("Marketplace", "grantRole", SETTLER_ROLE, ACCOUNTS[9])
        self.tx("Marketplace", "revokeRole", SETTLER_ROLE, ACCOUNTS[8])
        for account in (DAO, ACCOUNTS[8], ACCOUNTS[9]):
            self.role_candidates.add(("Marketplace", "0x" + SETTLER_ROLE.hex(), account))
            self.role_candidates.add(("Treasury", "0x" + GOVERNOR_ROLE.hex(), account))

    def all(self) -> None:
        """Every event of every contract in the deployment."""
        self.token_and_treasury()
        self.identity()
        self.devices()
        self.staking()
        self.market()
        self.slashing()

    # --- VehicleId ---------------------------------------------------------------------------

    def mint(self, owner: str, connection: int, vin: str) -> int:
        receipt = self.tx("VehicleId", "mint", owner, connection, eip712.vin_hash(vin))
        vehicle = self.event_arg(receipt, "VehicleId", "VehicleMinted", "vehicleId")
        self.vehicles.append(vehicle)
        return vehicle

    def identity(self) -> None:
        oracle = Account.from_key(ORACLE_KEY).address
        self.tx("VehicleId", "addConnection", "smartcar", oracle)
        self.tx("VehicleId", "addConnection", "tesla", ACCOUNTS[8])
        self.tx("VehicleId", "setConnection", 2, oracle, False)
        self.tx("VehicleId", "setConnection", 2, oracle, True)
        v1 = self.mint(OWNERS[0], 1, "5YJ3E1EA7KF317001")
        v2 = self.mint(OWNERS[1], 1, "5YJ3E1EA7KF317002")
        v3 = self.mint(OWNERS[2], 2, "5YJ3E1EA7KF317003")
        # The oracle attests a mint; the DAO relays it.
        deadline = self.now() + 3600
        vin = eip712.vin_hash("5YJ3E1EA7KF317004")
        vehicles = self.contract("VehicleId")
        dom = eip712.domain(eip712.VEHICLE_DOMAIN, self.chain_id(), vehicles.address)
        doc = eip712.mint_attestation(
            dom,
            to=OWNERS[3],
            connection_id=1,
            vin_hash=vin,
            nonce=(nonce := eip712.free_nonce(vehicles, oracle)),
            deadline=deadline,
        )
        receipt = self.tx(
            "VehicleId",
            "mintWithAttestation",
            OWNERS[3],
            1,
            vin,
            nonce,
            deadline,
            eip712.sign(doc, ORACLE_KEY),
        )
        v4 = self.event_arg(receipt, "VehicleId", "VehicleMinted", "vehicleId")
        self.vehicles.append(v4)
        far = self.now() + 365 * DAY
        self.tx(
            "VehicleId",
            "grant",
            v1,
            ACCOUNTS[5],
            TELEMETRY | LOCATION,
            far,
            keccak(text="t1"),
            sender=OWNERS[0],
        )
        self.tx(
            "VehicleId",
            "grant",
            v1,
            ACCOUNTS[6],
            MANAGE_KEYS | LOCK | UNLOCK,
            NO_END,
            keccak(text="t2"),
            sender=OWNERS[0],
        )
        # A key manager grants within its bits; the owner signs a grant that a relayer sends.
        self.tx("VehicleId", "grant", v1, ACCOUNTS[7], LOCK, far, keccak(text="t3"), sender=ACCOUNTS[6])
        owner_key = ANVIL_KEYS[1]
        doc = eip712.grant(
            dom,
            vehicle_id=v1,
            generation=vehicles.functions.generation(v1).call(),
            grantee=ACCOUNTS[8],
            permissions=TELEMETRY,
            expires_at=far,
            terms_hash=keccak(text="t4"),
            nonce=(nonce := eip712.free_nonce(vehicles, OWNERS[0])),
            deadline=deadline,
        )
        self.tx(
            "VehicleId",
            "grantBySig",
            v1,
            ACCOUNTS[8],
            TELEMETRY,
            far,
            keccak(text="t4"),
            OWNERS[0],
            nonce,
            deadline,
            eip712.sign(doc, owner_key),
        )
        self.tx("VehicleId", "revoke", v1, ACCOUNTS[5], sender=OWNERS[0])
        # The owner takes MANAGE_KEYS back from the manager: the key it granted goes void
        # (ManagerKeysVoided, no KeyRevoked); the manager keeps LOCK by the owner's new key.
        self.tx("VehicleId", "grant", v1, ACCOUNTS[6], LOCK, NO_END, keccak(text="t2b"), sender=OWNERS[0])
        self.tx("VehicleId", "grant", v2, ACCOUNTS[5], TELEMETRY, far, keccak(text="t5"), sender=OWNERS[1])
        self.tx(
            "VehicleId",
            "grant",
            v3,
            ACCOUNTS[5],
            TELEMETRY,
            self.now() + 60,
            keccak(text="t6"),
            sender=OWNERS[2],
        )
        self.tx("VehicleId", "setUser", v2, ACCOUNTS[6], far, sender=OWNERS[1])
        self.tx("VehicleId", "setUser", v3, ACCOUNTS[7], far, sender=OWNERS[2])
        self.tx("VehicleId", "approve", ACCOUNTS[9], v1, sender=OWNERS[0])
        # A sale: v3 moves to the fourth owner, voiding its keys and user.
        self.tx("VehicleId", "transferFrom", OWNERS[2], OWNERS[3], v3, sender=OWNERS[2])
        self.tx("VehicleId", "grant", v3, ACCOUNTS[5], DRIVE, far, keccak(text="t7"), sender=OWNERS[3])
        # The second owner burns v2 and the VIN is minted again.
        self.tx("VehicleId", "burn", v2, sender=OWNERS[1])
        self.mint(OWNERS[1], 1, "5YJ3E1EA7KF317002")
        self.key_candidates = {(v, a) for v in self.vehicles for a in ACCOUNTS}

    # --- AftermarketDevice -------------------------------------------------------------------

    def devices(self) -> None:
        self.tx("AftermarketDevice", "setManufacturer", MANUFACTURER, True)
        self.tx("AftermarketDevice", "setManufacturer", ACCOUNTS[8], True)
        self.tx("AftermarketDevice", "setManufacturer", ACCOUNTS[8], False)
        owners = (OWNERS[0], OWNERS[3], OWNERS[0])
        for i, (owner, key) in enumerate(zip(owners, DEVICE_KEYS, strict=True)):
            signer = Account.from_key(key).address
            receipt = self.tx(
                "AftermarketDevice",
                "mintDevice",
                owner,
                signer,
                keccak(text=f"serial {i}"),
                sender=MANUFACTURER,
            )
            self.device_ids.append(self.event_arg(receipt, "AftermarketDevice", "DeviceMinted", "deviceId"))
        d1, d2, _d3 = self.device_ids
        v1, _v2, v3, v4, _v5 = self.vehicles
        self.pair(v1, d1, DEVICE_KEYS[0], OWNERS[0])
        self.pair(v4, d2, DEVICE_KEYS[1], OWNERS[3])
        self.tx("AftermarketDevice", "unpair", v4, sender=OWNERS[3])
        self.pair(v3, d2, DEVICE_KEYS[1], OWNERS[3])  # v3 belongs to the fourth owner now
        # The device of v1 changes hands: the pairing goes stale without an event.
        self.tx("AftermarketDevice", "transferFrom", OWNERS[0], OWNERS[1], d1, sender=OWNERS[0])
        # The third device's key is rotated by its owner and its manufacturer, then revoked.
        d3 = self.device_ids[2]
        rotated = Account.from_key(keccak(text="device 2 rotated")).address
        self.tx("AftermarketDevice", "proposeDeviceSigner", d3, rotated, sender=OWNERS[0])
        self.tx("AftermarketDevice", "acceptDeviceSigner", d3, rotated, sender=MANUFACTURER)
        self.tx("AftermarketDevice", "revokeDevice", d3, sender=MANUFACTURER)

    def pair(self, vehicle: int, device: int, key: bytes, owner: str) -> None:
        devices = self.contract("AftermarketDevice")
        signer = Account.from_key(key).address
        deadline = self.now() + 3600
        doc = eip712.pair(
            eip712.domain(eip712.DEVICE_DOMAIN, self.chain_id(), devices.address),
            vehicle_id=vehicle,
            device_id=device,
            nonce=(nonce := eip712.free_nonce(devices, signer)),
            deadline=deadline,
        )
        self.tx(
            "AftermarketDevice", "pair", vehicle, device, nonce, deadline, eip712.sign(doc, key), sender=owner
        )

    # --- Staking -----------------------------------------------------------------------------

    def staking(self) -> None:
        staking = self.manifest.address("Staking")
        self.tx("Staking", "setCurve", Role.OPERATOR, 1_000 * DIMO, 0)
        self.tx("Staking", "setCurve", Role.BROKER, 500 * DIMO, 10 * DIMO)
        self.tx("Staking", "setCurve", Role.CONSUMER, 100 * DIMO, 10 * DIMO)
        self.tx("Staking", "setTierMultiplier", Tier.COMMANDS, 31_000)
        self.tx("Staking", "setUnbondingPeriod", 2 * DAY)
        self.tx("Staking", "setClaimWindow", 8 * DAY)
        for account, role in (
            (OPERATOR, Role.OPERATOR),
            (BROKER, Role.BROKER),
            (STEWARD, Role.BROKER),
            (CONSUMER, Role.CONSUMER),
        ):
            self.tx("Staking", "setWhitelisted", account, role, True)
            self.tx("DimoToken", "transfer", account, 50_000 * DIMO)
            self.tx("DimoToken", "approve", staking, 2_000 * DIMO, sender=account)
            self.tx("Staking", "stake", 2_000 * DIMO, sender=account)
        self.tx("Staking", "setWhitelisted", ACCOUNTS[9], Role.CONSUMER, True)
        self.tx("Staking", "setWhitelisted", ACCOUNTS[9], Role.CONSUMER, False)
        self.tx("Staking", "setWhitelisted", ACCOUNTS[9], Role.BROKER, True)
        self.tx("Staking", "resign", Role.BROKER, sender=ACCOUNTS[9])
        self.tx("Staking", "setDisputeWindow", 10 * DAY)
        # The guardian's one pause, lifted by the DAO, which re-arms it.
        self.tx("Staking", "grantRole", GUARDIAN_ROLE, ACCOUNTS[4])
        self.role_candidates.add(("Staking", "0x" + GUARDIAN_ROLE.hex(), ACCOUNTS[4]))
        self.tx("Staking", "pause", DAY, sender=ACCOUNTS[4])
        self.tx("Staking", "unpause")
        self.tx("Staking", "rearmGuardian")
        self.tx("Staking", "requestUnstake", 100 * DIMO, sender=CONSUMER)
        self.advance(3 * DAY)
        self.tx("Staking", "withdraw", sender=CONSUMER)
        self.tx("Staking", "requestUnstake", 50 * DIMO, sender=CONSUMER)

    # --- DataProducts and Marketplace ----------------------------------------------------------

    def market(self) -> None:
        market = self.manifest.address("Marketplace")
        receipts = [
            self.tx("DataProducts", "createProduct", terms(Kind.STREAM, 2 * DIMO), sender=OPERATOR),
            self.tx("DataProducts", "createProduct", terms(Kind.API, DIMO // 100), sender=OPERATOR),
            self.tx("DataProducts", "createProduct", terms(Kind.DATASET, 500 * DIMO), sender=OPERATOR),
        ]
        stream, api, dataset = (
            self.event_arg(r, "DataProducts", "ProductCreated", "productId") for r in receipts
        )
        receipt = self.tx(
            "DataProducts",
            "createBundle",
            terms(Kind.BUNDLE, 5 * DIMO),
            [stream, api, dataset],
            [0, 1_000, 0],
            sender=OPERATOR,
        )
        bundle = self.event_arg(receipt, "DataProducts", "ProductCreated", "productId")
        self.products = [stream, api, dataset, bundle]
        self.tx(
            "DataProducts",
            "updateTerms",
            stream,
            terms(Kind.STREAM, 3 * DIMO, refreshSeconds=30),
            sender=OPERATOR,
        )
        self.tx("DataProducts", "setActive", api, False, sender=OPERATOR)
        self.tx("DataProducts", "setActive", api, True)
        v1, _v2, v3, v4, v5 = self.vehicles
        self.tx("DataProducts", "join", stream, v1, sender=OWNERS[0])
        self.tx("DataProducts", "join", stream, v4, sender=OWNERS[3])
        self.tx("DataProducts", "join", stream, v5, sender=OWNERS[1])
        self.tx("DataProducts", "join", bundle, v1, sender=OWNERS[0])
        products = self.contract("DataProducts")
        deadline = self.now() + 3600
        doc = eip712.join(
            eip712.domain(eip712.DATA_PRODUCTS_DOMAIN, self.chain_id(), products.address),
            product_id=bundle,
            vehicle_id=v3,
            generation=self.contract("VehicleId").functions.generation(v3).call(),
            version=1,
            nonce=(nonce := eip712.free_nonce(products, OWNERS[3])),
            deadline=deadline,
        )
        self.tx("DataProducts", "joinBySig", bundle, v3, 1, nonce, deadline, eip712.sign(doc, ANVIL_KEYS[4]))
        self.tx("DataProducts", "leave", stream, v4, sender=OWNERS[3])
        self.tx("DataProducts", "join", dataset, v4, sender=OWNERS[3])
        self.tx(
            "DataProducts",
            "signalDemand",
            keccak(text="soh by region"),
            "ipfs://demand/1",
            5_000 * DIMO,
            sender=CONSUMER,
        )
        receipt = self.tx(
            "DataProducts", "signalDemand", keccak(text="trips"), "ipfs://demand/2", 10 * DIMO, sender=BROKER
        )
        self.tx(
            "DataProducts",
            "withdrawDemand",
            self.event_arg(receipt, "DataProducts", "DemandSignaled", "signalId"),
            sender=BROKER,
        )
        self.tx("DataProducts", "setProtocolFeeBps", 600)
        self.tx("Marketplace", "setSteward", STEWARD, True)
        self.tx("Marketplace", "setSteward", ACCOUNTS[9], True)
        self.tx("Marketplace", "setSteward", ACCOUNTS[9], False)
        self.tx("DimoToken", "approve", market, UINT256_MAX, sender=CONSUMER)
        self.tx("DimoToken", "approve", market, UINT256_MAX, sender=BROKER)
        self.stream_order = self.buy("subscribe", stream, 2, 1, BROKER, Use.INSURANCE, units=2)
        api_order = self.buy("buyCredits", api, 100, ZERO_ADDRESS, Use.RESEARCH, units=100)
        dataset_order = self.buy("purchaseDataset", dataset, keccak(text="spec"), STEWARD, Use.INSURANCE)
        self.buy("subscribe", bundle, 1, 2, ZERO_ADDRESS, Use.RESEARCH, units=2, sender=BROKER)
        # the settler delivers the dataset: its whole member share vests at once
        self.tx("Marketplace", "deliverDataset", dataset_order, keccak(text="result"))
        # the operator bumps the API's terms: its buyer takes back what has not vested
        self.advance(DAY)
        # (the protocol fee is 6 % now: the operator takes 19 %)
        self.tx(
            "DataProducts",
            "updateTerms",
            api,
            terms(Kind.API, DIMO // 50, operatorBps=1_900),
            sender=OPERATOR,
        )
        self.tx("Marketplace", "refund", api_order, sender=CONSUMER)
        # cumulative member roots: one replaced, one accepted and claimed, one revoked
        self.tx("Marketplace", "setRootDelay", 2 * 3_600)
        self.propose_root([(OWNERS[0], 1_000), (OWNERS[1], 2_000)], {stream: 3_000})
        tree = self.propose_root([(OWNERS[0], 3_000), (OWNERS[1], 2_000)], {stream: 4_000, dataset: 1_000})
        self.advance(2 * 3_600)
        pending = self.pending_takes
        self.tx("Marketplace", "acceptRoot", *pending)
        self.tx("Marketplace", "claim", OWNERS[0], 3_000, tree.proof(0), sender=ACCOUNTS[9])
        self.propose_root([(OWNERS[0], 4_000), (OWNERS[1], 2_000)], {stream: 6_000})
        self.tx("Marketplace", "revokePendingRoot")
        self.tx("Marketplace", "withdrawEarnings", sender=OPERATOR)
        self.advance(MONTH_SECONDS + DAY)
        self.tx("Marketplace", "expireOrder", self.stream_order)

    def buy(self, fn: str, product: int, *args: Any, units: int = 1, sender: str = CONSUMER) -> int:
        """A purchase at the product's current terms version, paying at most price x units."""
        _operator, version, _active, product_terms = (
            self.contract("DataProducts").functions.product(product).call()
        )
        receipt = self.tx("Marketplace", fn, product, *args, version, product_terms[1] * units, sender=sender)
        return self.event_arg(receipt, "Marketplace", "OrderPlaced", "orderId")

    def propose_root(self, leaves: list[tuple[str, int]], takes: dict[int, int]) -> ClaimTree:
        """The settler proposes a cumulative root over `leaves` taking `takes` (cumulative) from
        each product; the tree with its leaves in the given order."""
        tree = ClaimTree.build(leaves)
        products = sorted(takes)
        self.pending_takes = (products, [takes[p] for p in products])
        self.tx("Marketplace", "proposeRoot", tree.root_bytes, *self.pending_takes, keccak(text=str(leaves)))
        return tree

    # --- slashing ----------------------------------------------------------------------------

    def propose_slash(
        self, account: str, amount: int, subject: SlashSubject, subject_id: int, uri: str
    ) -> int:
        receipt = self.tx("Staking", "proposeSlash", account, amount, subject, subject_id, uri)
        return self.event_arg(receipt, "Staking", "SlashProposed", "slashId")

    def slashing(self) -> None:
        active, unbonding, _ = self.contract("Staking").functions.stakeOf(CONSUMER).call()
        tree = PayoutTree.from_amounts([(OWNERS[0], 30 * DIMO), (OWNERS[1], 20 * DIMO)])
        slash_id = self.propose_slash(
            CONSUMER, active + unbonding // 2, SlashSubject.ORDER, 1, "ipfs://declared-use-breached"
        )
        self.tx("Staking", "slash", slash_id, tree.total, tree.root)
        index, account, amount = tree.leaf(1)
        self.tx("Staking", "claimSlash", slash_id, index, account, amount, tree.proof(1), sender=ACCOUNTS[9])
        late = self.propose_slash(BROKER, 10 * DIMO, SlashSubject.PRODUCT, 1, "ipfs://late-reporting")
        self.tx("Staking", "slash", late, 0, b"\x00" * 32)
        disputed = self.propose_slash(STEWARD, 5 * DIMO, SlashSubject.PRODUCT, 2, "ipfs://disputed")
        self.tx("Staking", "cancelSlash", disputed)
        # Left pending: the operator's stake stays frozen for the dispute window (10 days).
        self.propose_slash(OPERATOR, 1 * DIMO, SlashSubject.ORDER, 2, "ipfs://pending-vote")
        self.advance(9 * DAY)
        self.tx("Staking", "sweepSlash", slash_id)

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
