"""The protocol on anvil for the gateway's tests and benchmarks: a DAO (the deployer), an
active operator, consumers, vehicle owners, and one-line actions (products, bundles, mints,
joins, keys, purchases, term changes, transfers, slashes), sent through plain web3."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from devkit.deployment import Deployer
from devkit.devnet import ANVIL_KEYS
from workers import eip712
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import Manifest
from workers.protocol import DIMO, NO_END, UINT256_MAX, ZERO_ADDRESS, Kind, Role, SlashSubject, Use
from workers.protocol.permissions import LIVE, LOCATION, TELEMETRY
from workers.protocol.terms import terms as base_terms

OPERATOR_STAKE = 1_000 * DIMO


def terms(
    kind: int,
    *,
    price: int = DIMO // 100,
    permissions: int = TELEMETRY | LOCATION | LIVE,
    refresh: int = 1,
    min_cohort: int = 0,
    tag: str = "",
) -> tuple:
    """IDataProducts.Terms as the ABI tuple: 70/20/5 and the default 5% protocol fee."""
    return base_terms(
        kind,
        price,
        requiredPermissions=permissions,
        refreshSeconds=refresh,
        minCohort=max(min_cohort, 1) if kind in (Kind.DATASET, Kind.BUNDLE) else min_cohort,
        termsHash=keccak(text=f"terms {kind} {price} {tag}"),
        termsURI=f"ipfs://terms/{kind}/{tag}",
    )


@dataclass
class MarketWorld:
    w3: Web3
    manifest: Manifest
    dao_key: str = ANVIL_KEYS[0]
    operator_key: str = ANVIL_KEYS[2]
    consumer_keys: tuple[str, ...] = (ANVIL_KEYS[3], ANVIL_KEYS[4])
    owner_keys: tuple[str, ...] = (ANVIL_KEYS[6], ANVIL_KEYS[7], ANVIL_KEYS[8])
    senders: dict[str, Deployer] = field(default_factory=dict)
    connection_id: int = 0
    minted: int = 0

    def contract(self, name: str) -> Contract:
        return self.w3.eth.contract(address=self.manifest.address(name), abi=load_artifact(name).abi)

    def __post_init__(self) -> None:
        self.token = self.contract("DimoToken")
        self.vehicles = self.contract("VehicleId")
        self.staking = self.contract("Staking")
        self.products = self.contract("DataProducts")
        self.market = self.contract("Marketplace")

    @staticmethod
    def address(key: str) -> str:
        return Account.from_key(key).address

    @property
    def operator(self) -> str:
        return self.address(self.operator_key)

    def sender(self, key: str) -> Deployer:
        if key not in self.senders:
            self.senders[key] = Deployer(self.w3, Account.from_key(key))
        return self.senders[key]

    def send(self, key: str, contract: Contract, fn: str, *args: Any) -> Any:
        return self.sender(key).call(contract, fn, *args)

    # --- cast -------------------------------------------------------------------------------
    def setup(self) -> MarketWorld:
        """Curves, an active operator, active consumers with allowances, one OEM connection."""
        self.send(self.dao_key, self.staking, "setCurve", Role.OPERATOR, OPERATOR_STAKE, 0)
        self.send(self.dao_key, self.staking, "setCurve", Role.CONSUMER, 10 * DIMO, 0)
        self.stake(self.operator_key, Role.OPERATOR, OPERATOR_STAKE)
        for key in self.consumer_keys:
            self.stake(key, Role.CONSUMER, 1_000 * DIMO)
            self.send(key, self.token, "approve", self.market.address, UINT256_MAX)
        receipt = self.send(self.dao_key, self.vehicles, "addConnection", "sim", self.address(self.dao_key))
        self.connection_id = int(
            self.vehicles.events.ConnectionSet().process_receipt(receipt, errors=DISCARD)[0]["args"][
                "connectionId"
            ]
        )
        return self

    def stake(self, key: str, role: int, amount: int) -> None:
        account = self.address(key)
        self.send(self.dao_key, self.staking, "setWhitelisted", account, role, True)
        self.send(self.dao_key, self.token, "transfer", account, amount + 100_000 * DIMO)
        self.send(key, self.token, "approve", self.staking.address, amount)
        self.send(key, self.staking, "stake", amount)

    # --- products ---------------------------------------------------------------------------
    def create_product(self, kind: int, **options: Any) -> int:
        self.send(self.operator_key, self.products, "createProduct", terms(kind, **options))
        return int(self.products.functions.productCount().call())

    def create_bundle(self, components: list[int], quantities: list[int], **options: Any) -> int:
        self.send(
            self.operator_key,
            self.products,
            "createBundle",
            terms(Kind.BUNDLE, **options),
            components,
            quantities,
        )
        return int(self.products.functions.productCount().call())

    def update_terms(self, product_id: int, kind: int, **options: Any) -> None:
        self.send(self.operator_key, self.products, "updateTerms", product_id, terms(kind, **options))

    def set_active(self, product_id: int, active: bool) -> None:
        self.send(self.operator_key, self.products, "setActive", product_id, active)

    # --- vehicles ---------------------------------------------------------------------------
    def mint(self, owner_key: str) -> int:
        self.minted += 1
        vin = f"5YJ3E1EA7KF{self.minted:06d}"
        receipt = self.send(
            self.dao_key,
            self.vehicles,
            "mint",
            self.address(owner_key),
            self.connection_id,
            eip712.vin_hash(vin),
        )
        return int(
            self.vehicles.events.VehicleMinted().process_receipt(receipt, errors=DISCARD)[0]["args"][
                "vehicleId"
            ]
        )

    def join(self, owner_key: str, product_id: int, vehicle_id: int) -> None:
        self.send(owner_key, self.products, "join", product_id, vehicle_id)

    def leave(self, owner_key: str, product_id: int, vehicle_id: int) -> None:
        self.send(owner_key, self.products, "leave", product_id, vehicle_id)

    def grant(
        self, owner_key: str, vehicle_id: int, grantee: str, permissions: int, expires_at: int = NO_END
    ) -> None:
        self.send(
            owner_key, self.vehicles, "grant", vehicle_id, grantee, permissions, expires_at, b"\x00" * 32
        )

    def revoke(self, owner_key: str, vehicle_id: int, grantee: str) -> None:
        self.send(owner_key, self.vehicles, "revoke", vehicle_id, grantee)

    def transfer(self, owner_key: str, vehicle_id: int, to: str) -> None:
        self.send(owner_key, self.vehicles, "transferFrom", self.address(owner_key), to, vehicle_id)

    # --- purchases --------------------------------------------------------------------------
    def _order_id(self, receipt: Any) -> int:
        return int(
            self.market.events.OrderPlaced().process_receipt(receipt, errors=DISCARD)[0]["args"]["orderId"]
        )

    def quote(self, product_id: int, units: int) -> tuple[int, int]:
        """(current terms version, price x units): what a purchase names so that it fails
        rather than pay under other terms or more than quoted (TermsVersionMoved,
        PaymentAboveMax)."""
        _operator, version, _active, product_terms = self.products.functions.product(product_id).call()
        return int(version), int(product_terms[1]) * units

    def subscribe(self, consumer_key: str, product_id: int, vehicles: int, months: int = 1) -> int:
        version, max_payment = self.quote(product_id, vehicles * months)
        return self._order_id(
            self.send(
                consumer_key,
                self.market,
                "subscribe",
                product_id,
                vehicles,
                months,
                ZERO_ADDRESS,
                Use.INSURANCE,
                version,
                max_payment,
            )
        )

    def buy_credits(self, consumer_key: str, product_id: int, calls: int) -> int:
        version, max_payment = self.quote(product_id, calls)
        return self._order_id(
            self.send(
                consumer_key,
                self.market,
                "buyCredits",
                product_id,
                calls,
                ZERO_ADDRESS,
                Use.INSURANCE,
                version,
                max_payment,
            )
        )

    def purchase_dataset(self, consumer_key: str, product_id: int) -> int:
        version, max_payment = self.quote(product_id, 1)
        return self._order_id(
            self.send(
                consumer_key,
                self.market,
                "purchaseDataset",
                product_id,
                keccak(text="spec"),
                ZERO_ADDRESS,
                Use.INSURANCE,
                version,
                max_payment,
            )
        )

    def refund(self, consumer_key: str, order_id: int) -> int:
        """The buyer takes back the unvested remainder (terms bumped, product deactivated,
        operator slashed, dataset undelivered); the amount refunded."""
        receipt = self.send(consumer_key, self.market, "refund", order_id)
        return int(
            self.market.events.Refunded().process_receipt(receipt, errors=DISCARD)[0]["args"]["amount"]
        )

    # --- governance -------------------------------------------------------------------------
    def slash(self, account: str, amount: int) -> None:
        """The DAO proposes and at once executes a slash of up to `amount` of `account`."""
        receipt = self.send(
            self.dao_key,
            self.staking,
            "proposeSlash",
            account,
            amount,
            SlashSubject.PRODUCT,
            0,
            "ipfs://misuse",
        )
        slash_id = self.staking.events.SlashProposed().process_receipt(receipt, errors=DISCARD)[0]["args"][
            "slashId"
        ]
        self.send(self.dao_key, self.staking, "slash", slash_id, 0, b"\x00" * 32)

    def slash_operator(self, amount: int) -> None:
        self.slash(self.operator, amount)

    def restake_operator(self, amount: int) -> None:
        self.send(self.dao_key, self.token, "transfer", self.operator, amount)
        self.send(self.operator_key, self.token, "approve", self.staking.address, amount)
        self.send(self.operator_key, self.staking, "stake", amount)
