"""A market with money in its member pools, usage recorded as the gateway records it, and the
balance sheet the settlement must conserve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.databases import session_scope
from tests.support.history import ACCOUNTS, BROKER, CONSUMER, OPERATOR, OWNERS, STEWARD, History
from workers.config import Settings
from workers.ledger import UsageKind, record_usage


@dataclass
class Market:
    history: History
    settings: Settings
    stream: int
    api: int

    @property
    def now(self) -> int:
        return self.history.now()

    def epoch(self, offset: int = 0) -> int:
        return self.now // self.settings.epoch_seconds + offset

    def add_usage(
        self,
        product_id: int,
        epoch: int,
        contributions: list[tuple[int, str, int]],
        kind: UsageKind = UsageKind.API,
        tag: str = "",
    ) -> None:
        """Usage (vehicle, owner, units) recorded through the ledger as the gateway records it,
        committed."""
        with session_scope(self.settings.database_url) as session:
            for i, (vehicle_id, owner, units) in enumerate(contributions):
                record_usage(
                    session,
                    kind,
                    (f"{tag}{product_id}", epoch, i),
                    product_id=product_id,
                    vehicle_id=vehicle_id,
                    owner=owner,
                    epoch=epoch,
                    units=units,
                )

    def end_epoch(self) -> None:
        """Moves chain time past the current epoch."""
        self.history.advance(self.settings.epoch_seconds)

    def settled_logs(self, product_id: int, epoch: int | None = None) -> list[Any]:
        """The Marketplace's Settled events of `product_id` (of one `epoch` if given)."""
        filters = {"productId": product_id} if epoch is None else {"productId": product_id, "epoch": epoch}
        settled = self.history.contract("Marketplace").events.Settled()
        return list(settled.get_logs(from_block=0, argument_filters=filters))

    def claim(self, owner: str, claim: dict[str, Any]) -> None:
        """Pays `owner`'s stored claim (a row of unclaimed_claims) on chain; a relayer sends it."""
        self.history.tx(
            "Marketplace",
            "claim",
            claim["product_id"],
            claim["epoch"],
            claim["index"],
            owner,
            claim["amount"],
            claim["proof"],
            sender=ACCOUNTS[9],
        )

    def balance_sheet(self) -> tuple[int, int]:
        """(Marketplace's DIMO balance, what it owes: pools + earnings + unclaimed epoch money)."""
        market = self.history.contract("Marketplace").functions
        token = self.history.contract("DimoToken").functions
        held = token.balanceOf(self.history.manifest.address("Marketplace")).call()
        products = range(1, self.history.contract("DataProducts").functions.productCount().call() + 1)
        owed = sum(market.memberPool(p).call() for p in products)
        owed += sum(market.claimable(a).call() for a in {*OWNERS, *_parties()})
        for p in products:
            for log in self.settled_logs(p):
                _root, amount, claimed = market.epochOf(p, log["args"]["epoch"]).call()
                owed += amount - claimed
        return held, owed


def _parties() -> list[str]:
    return [OPERATOR, BROKER, STEWARD, CONSUMER]


def market_with_pools(history: History, settings: Settings) -> Market:
    """Identity, staking and the market story: every product's pool holds members' money."""
    history.token_and_treasury()
    history.identity()
    history.staking()
    history.market()
    stream, api, _dataset, _bundle = history.products
    return Market(history=history, settings=settings, stream=stream, api=api)


def settings_for(anvil_url: str, db_url: str, manifest: Path, **overrides: object) -> Settings:
    values = {"confirmations": 0, "rpc_timeout": 5.0, "epoch_seconds": 3_600, **overrides}
    return Settings(rpc_url=anvil_url, database_url=db_url, deployment_file=manifest, **values)
