"""Writes indexer projection rows directly, for gateway tests that need a given state of the
chain as the indexer would have confirmed it (the anvil-backed suites use the real indexer)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from workers.db.indexing import IndexedBlock, IndexerCursor, IndexerHealth
from workers.db.projections import BundleComponent, Membership, Order, Product, Vehicle
from workers.protocol import KNOWN_USES, ZERO_ADDRESS, Use
from workers.protocol.permissions import LIVE, LOCATION, TELEMETRY
from workers.signals.store import SignalValue, store_signals

OPERATOR = "0x" + "0a" * 20
FAR = 2**40


@dataclass
class World:
    session: Session
    block: int = 10
    timestamp: int = 0
    inactive_operators: set[str] = field(default_factory=set)

    def head(self, block: int, timestamp: int = 0, block_hash: str | None = None) -> None:
        self.block, self.timestamp = block, timestamp
        cursor = self.session.get(IndexerCursor, "main")
        if cursor is None:
            self.session.add(
                IndexerCursor(
                    name="main",
                    chain_id=31337,
                    deployment="0x",
                    start_block=0,
                    last_block=block,
                    last_hash=block_hash,
                )
            )
        else:
            cursor.last_block = block
            cursor.last_hash = block_hash
        if timestamp:
            self.session.merge(
                IndexedBlock(number=block, hash="0x" + "00" * 32, parent_hash=None, timestamp=timestamp)
            )
        # the indexer reports a fresh index at this head (workers/indexer/health.py)
        self.session.merge(
            IndexerHealth(
                name="main",
                chain_head=block,
                chain_head_timestamp=timestamp,
                indexed_block=block,
                indexed_timestamp=timestamp,
                checked_at=time.time(),
                halted=None,
            )
        )

    def product(
        self,
        product_id: int,
        kind: int,
        *,
        permissions: int = TELEMETRY | LOCATION | LIVE,
        version: int = 1,
        active: bool = True,
        refresh: int = 1,
        min_cohort: int = 0,
        operator: str = OPERATOR,
        components: tuple[tuple[int, int], ...] = (),
    ) -> None:
        self.session.merge(
            Product(
                product_id=product_id,
                operator=operator,
                kind=kind,
                version=version,
                active=active,
                price=10,
                members_bps=5000,
                operator_bps=3000,
                broker_bps=1500,
                permitted_uses=KNOWN_USES,
                required_permissions=permissions,
                refresh_seconds=refresh,
                min_cohort=min_cohort,
                terms_hash="0x" + "00" * 32,
                terms_uri="ipfs://terms",
                created_block=1,
                block_number=1,
            )
        )
        for position, (component, quantity) in enumerate(components):
            self.session.merge(
                BundleComponent(
                    bundle_id=product_id,
                    position=position,
                    component_id=component,
                    monthly_quantity=quantity,
                    block_number=1,
                )
            )

    def vehicle(self, vehicle_id: int, owner: str, generation: int = 1, *, tenure_from: int = 0) -> None:
        """`owner` holds the vehicle in `generation` since `tenure_from` (unix seconds)."""
        self.session.merge(
            Vehicle(
                vehicle_id=vehicle_id,
                owner=owner,
                generation=generation,
                tenure_started_at=tenure_from,
                burned=False,
                block_number=1,
            )
        )

    def join(
        self,
        product_id: int,
        vehicle_id: int,
        owner: str,
        version: int = 1,
        generation: int = 1,
        *,
        joined_at: int = 0,
    ) -> None:
        self.session.merge(
            Membership(
                product_id=product_id,
                vehicle_id=vehicle_id,
                owner=owner,
                version=version,
                generation=generation,
                joined_at=joined_at,
                block_number=1,
            )
        )

    def order(
        self,
        order_id: int,
        product_id: int,
        buyer: str,
        quantity: int,
        *,
        starts: int = 0,
        ends: int = FAR,
        refunded_at: int | None = None,
        **columns: object,
    ) -> None:
        """An order; `columns` set any other `orders` column (vesting, delivery, …)."""
        self.session.merge(
            Order(
                order_id=order_id,
                product_id=product_id,
                buyer=buyer,
                broker=ZERO_ADDRESS,
                quantity=quantity,
                paid=1,
                starts_at=starts,
                ends_at=ends,
                use=Use.INSURANCE,
                in_force=refunded_at is None,
                refunded_at=refunded_at,
                tx_hash="0x" + "00" * 32,
                block_number=1,
                **{"refunded_amount": None if refunded_at is None else 1, **columns},
            )
        )

    def signals(self, vehicle_id: int, values: dict[str, float], ts_ms: int, source: str = "oem:1") -> None:
        store_signals(
            self.session,
            vehicle_id,
            [SignalValue(name, value, "km/h", ts_ms, source) for name, value in values.items()],
        )


def fresh_index(db_url: str, block: int = 10) -> None:
    """An empty index the indexer reports fresh at `block` (the gateway serves nothing from
    an index without a health report)."""
    from tests.support.databases import session_scope  # noqa: PLC0415

    with session_scope(db_url) as session:
        World(session).head(block)
