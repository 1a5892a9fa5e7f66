"""A market with vesting orders for the settlement suites: a stream subscription and API credits
bought at the products' current terms, members in consent, usage recorded as the gateway
records it, the chain's vesting views, and the balance sheet settlement must conserve."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.databases import session_scope
from tests.support.history import ACCOUNTS, BROKER, CONSUMER, OPERATOR, OWNERS, History, terms
from workers.config import Settings
from workers.ledger import UsageKind, record_usage
from workers.ledger.shares import Vesting
from workers.merkle import ClaimTree
from workers.protocol import DIMO, UINT256_MAX, ZERO_ADDRESS, Kind, Use
from workers.protocol.constants import MIN_ROOT_DELAY

#: Relays members' claims (anyone may send Marketplace.claim).
RELAYER = ACCOUNTS[9]


@dataclass
class Market:
    history: History
    settings: Settings
    stream: int
    api: int
    orders: dict[str, int] = field(default_factory=dict)

    @property
    def now(self) -> int:
        return self.history.now()

    @property
    def market(self) -> Any:
        return self.history.contract("Marketplace").functions

    def period(self, offset: int = 0) -> int:
        return self.now // self.settings.epoch_seconds + offset

    def add_usage(
        self,
        product_id: int,
        order_id: int,
        period: int,
        served: list[tuple[int, str, int]],
        kind: UsageKind = UsageKind.API,
    ) -> None:
        """Usage (vehicle, owner, units) of `order_id` recorded through the ledger as the
        gateway records it, committed."""
        with session_scope(self.settings.database_url) as session:
            for vehicle_id, owner, units in served:
                record_usage(
                    session,
                    kind,
                    product_id=product_id,
                    order_id=order_id,
                    vehicle_id=vehicle_id,
                    owner=owner,
                    period=period,
                    units=units,
                )

    def end_period(self, periods: int = 1) -> None:
        """Moves chain time to the start of a later period."""
        seconds = self.settings.epoch_seconds
        self.history.advance((self.period() + periods) * seconds - self.now)

    def vesting(self, order_id: int) -> Vesting:
        share, starts, ends, refunded, _version = self.market.orderVesting(order_id).call()
        if not refunded:
            return Vesting(share, starts, ends)
        (event,) = (
            self.history.contract("Marketplace")
            .events.Refunded()
            .get_logs(from_block=0, argument_filters={"orderId": order_id})
        )
        return Vesting(share, starts, ends, refunded, event["args"]["amount"])

    def claim(self, account: str, cumulative: int, proof: list[str]) -> Any:
        """Pays `account`'s claim under the accepted root; a relayer sends it."""
        return self.history.tx("Marketplace", "claim", account, cumulative, proof, sender=RELAYER)

    def balance(self, account: str) -> int:
        return self.history.contract("DimoToken").functions.balanceOf(account).call()

    def claimable_by_chain(self, tree: ClaimTree) -> dict[str, int]:
        return {a.lower(): c - self.market.claimed(a).call() for a, c in tree.values}


def vesting_market(history: History, settings: Settings) -> Market:
    """Identity, staking, and two products with members and vesting orders: a stream
    (members v1, v4, v5) bought for 2 vehicles x 2 months, API credits (members v1, v4) bought
    for 1,000 calls valid 30 days. The root delay is the shortest governance allows."""
    history.token_and_treasury()
    history.identity()
    history.staking()
    receipts = [
        history.tx("DataProducts", "createProduct", terms(Kind.STREAM, 2 * DIMO), sender=OPERATOR),
        history.tx("DataProducts", "createProduct", terms(Kind.API, DIMO // 100), sender=OPERATOR),
    ]
    stream, api = (history.event_arg(r, "DataProducts", "ProductCreated", "productId") for r in receipts)
    v1, _v2, _v3, v4, v5 = history.vehicles
    for product, vehicle, owner in ((stream, v1, OWNERS[0]), (stream, v4, OWNERS[3]), (stream, v5, OWNERS[1]),
                                    (api, v1, OWNERS[0]), (api, v4, OWNERS[3])):  # fmt: skip
        history.tx("DataProducts", "join", product, vehicle, sender=owner)
    marketplace = history.manifest.address("Marketplace")
    history.tx("DimoToken", "approve", marketplace, UINT256_MAX, sender=CONSUMER)
    history.tx("Marketplace", "setRootDelay", MIN_ROOT_DELAY)
    market = Market(history=history, settings=settings, stream=stream, api=api)
    market.orders["stream"] = history.buy("subscribe", stream, 2, 2, BROKER, Use.INSURANCE, units=4)
    market.orders["api"] = history.buy("buyCredits", api, 1_000, ZERO_ADDRESS, Use.RESEARCH, units=1_000)
    return market


def settings_for(anvil_url: str, db_url: str, manifest: Path, **overrides: object) -> Settings:
    values = {"confirmations": 0, "rpc_timeout": 5.0, "epoch_seconds": 3_600, "settlement_grace_seconds": 0}
    values.update(overrides)
    return Settings(rpc_url=anvil_url, database_url=db_url, deployment_file=manifest, **values)
