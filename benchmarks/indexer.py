"""Indexer throughput: a backfill of more than 50,000 protocol events from anvil into SQLite and
PostgreSQL, beside a naive poller (one eth_getLogs per block, one commit per event) over the
same blocks in the same run; and the settlement's Merkle work for 1,000,000 members.

The history comes from the protocol contracts themselves (a forge-built pump makes DimoToken
and VehicleId emit many events per transaction): ERC-20 Transfers to fresh accounts (two
balance rows each), and vehicles minted and keyed (ERC-721 Transfer, VehicleMinted,
KeyGranted), with empty blocks in between as a real chain has.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from eth_utils import keccak
from sqlalchemy import Engine, insert, update

from benchmarks.framework import BenchContext, Table, format_cell
from devkit.databases import postgres_database, postgres_unavailable
from workers.chain import Chain, connect
from workers.chain.deployment import Manifest
from workers.config import Settings, use_settings
from workers.db import create_engine_for, dispose_engines, upgrade, upsert
from workers.db.indexing import ChainEvent, IndexedBlock, IndexerCursor
from workers.indexer.decode import Decoder, Event
from workers.indexer.handlers import handler_for, load_handlers
from workers.indexer.store import Store
from workers.indexer.sync import CURSOR, Indexer, deployment_fingerprint
from workers.indexer.views import attach_views
from workers.ledger import Served
from workers.merkle import ClaimTree
from workers.protocol import MINTER_ROLE, UINT256_MAX
from workers.settlement import OrderPeriod, split_period

#: Rounds of (300 token transfers, 100 vehicles minted and keyed): 600 events a round.
ROUNDS = 120
TRANSFERS_PER_TX = 300
VEHICLES_PER_TX = 50
#: Empty blocks mined after each transaction.
GAP_BLOCKS = 15
#: The naive poller stops after this many seconds (its rate is what is compared).
NAIVE_SECONDS = 90.0
MERKLE_MEMBERS = 1_000_000
GRANTEE = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"


@dataclass
class History:
    first: int
    last: int
    events: int


def _pump_history(ctx: BenchContext) -> History:
    token, vehicles = ctx.contract("DimoToken"), ctx.contract("VehicleId")
    pump = ctx.deploy_forge("BenchEventPump.sol", "BenchEventPump", [])
    deployer = ctx.deployer
    connection = vehicles.functions.connectionCount().call() + 1
    deployer.call(vehicles, "addConnection", "bench", deployer.account.address)
    deployer.call(vehicles, "grantRole", MINTER_ROLE, pump.address)
    deployer.call(token, "approve", pump.address, UINT256_MAX)
    first = ctx.w3.eth.block_number + 1
    events = 0
    for r in range(ROUNDS):
        recipients = [
            ctx.w3.to_checksum_address(keccak(text=f"bench holder {r} {i}")[:20])
            for i in range(TRANSFERS_PER_TX)
        ]
        deployer.call(pump, "transfers", token.address, recipients, 10**15)
        ctx.w3.provider.make_request("anvil_mine", [hex(GAP_BLOCKS)])
        deployer.call(pump, "mintAndGrant", vehicles.address, connection, r, VEHICLES_PER_TX, GRANTEE)
        ctx.w3.provider.make_request("anvil_mine", [hex(GAP_BLOCKS)])
        events += TRANSFERS_PER_TX + 3 * VEHICLES_PER_TX
    return History(first=first, last=ctx.w3.eth.block_number, events=events)


def _settings(rpc_url: str, database_url: str, manifest_file: Path, head: int, last: int) -> Settings:
    # Index up to `last` exactly: the confirmations keep the rest of the chain out.
    return Settings(
        rpc_url=rpc_url, database_url=database_url, deployment_file=manifest_file, confirmations=head - last
    )


def _ours(chain: Chain, url: str, settings: Settings) -> tuple[float, int, int]:
    indexer = Indexer(chain, create_engine_for(url), settings)
    started = time.perf_counter()
    report = indexer.sync()
    return time.perf_counter() - started, report.events, report.blocks


def _naive(chain: Chain, url: str, last: int) -> tuple[float, int, int, bool]:
    """One eth_getLogs per block; every event decoded, handled and committed on its own."""
    load_handlers()
    engine = create_engine_for(url)
    decoder = Decoder.for_manifest(chain.manifest)
    addresses = sorted(a.lower() for a in chain.manifest.contracts.values())
    with engine.begin() as conn:
        conn.execute(
            insert(IndexerCursor.__table__).values(
                name=CURSOR, chain_id=chain.chain_id, deployment=deployment_fingerprint(chain),
                start_block=chain.manifest.block, last_block=chain.manifest.block - 1,
            )
        )  # fmt: skip
    started = time.perf_counter()
    events = blocks = 0
    for number in range(chain.manifest.block, last + 1):
        logs = chain.rpc.get_logs(addresses, number, number)
        decoded = [e for e in (decoder.decode(entry) for entry in logs) if e is not None]
        for event in attach_views(chain.rpc, chain.manifest, decoded):
            _commit_one(engine, event)
            events += 1
        with engine.begin() as conn:
            conn.execute(update(IndexerCursor.__table__).values(last_block=number))
        blocks += 1
        if time.perf_counter() - started > NAIVE_SECONDS:
            return time.perf_counter() - started, events, blocks, True
    return time.perf_counter() - started, events, blocks, False


def _commit_one(engine: Engine, event: Event) -> None:
    with engine.begin() as conn:
        store = Store(conn, None)
        store.block = event.block_number
        handler = handler_for(event.contract, event.name)
        if handler is not None:
            handler(event, store)
        store.flush()
        conn.execute(
            insert(ChainEvent.__table__).values(
                block_number=event.block_number, log_index=event.log_index, tx_hash=event.tx_hash,
                block_timestamp=event.block_timestamp, contract=event.contract, address=event.address,
                name=event.name, args=json.dumps(event.args),
            )
        )  # fmt: skip
        conn.execute(
            upsert(conn, IndexedBlock),
            {"number": event.block_number, "hash": event.block_hash, "timestamp": event.block_timestamp},
        )


@contextmanager
def _databases(directory: Path) -> Iterator[list[tuple[str, str | None, str | None]]]:
    """(label, ours url, naive url) per backend; PostgreSQL ones are fresh databases."""
    out: list[tuple[str, str | None, str | None]] = [
        ("SQLite", f"sqlite:///{directory / 'ours.db'}", f"sqlite:///{directory / 'naive.db'}")
    ]
    reason = postgres_unavailable()
    if reason:
        out.append((f"PostgreSQL (skipped: {reason})", None, None))
        yield out
        return
    with postgres_database() as ours, postgres_database() as naive:
        out.append(("PostgreSQL", ours, naive))
        yield out


def _indexer_table(ctx: BenchContext, history: History, manifest_file: Path) -> Table:
    head = ctx.w3.eth.block_number
    table = Table(
        f"Indexer backfill from anvil ({history.events:,} pumped events in blocks "
        f"{history.first:,}..{history.last:,}, plus the deployment's events)",
        ["database", "strategy", "events", "blocks", "seconds", "events/s", "vs naive"],
    )
    with TemporaryDirectory() as tmp, _databases(Path(tmp)) as backends:
        for label, ours_url, naive_url in backends:
            if ours_url is None or naive_url is None:
                table.add(label, "-", "-", "-", "-", "-", "-")
                continue
            settings = _settings(ctx.w3.provider.endpoint_uri, ours_url, manifest_file, head, history.last)
            use_settings(settings)
            chain = connect(settings)
            for url in (ours_url, naive_url):
                upgrade(url)
            seconds, events, blocks = _ours(chain, ours_url, settings)
            gc.collect()
            n_seconds, n_events, n_blocks, stopped = _naive(chain, naive_url, history.last)
            ours_rate, naive_rate = events / seconds, n_events / n_seconds
            ratio = f"{ours_rate / naive_rate:.1f}x"
            table.add(label, "batched", events, blocks, f"{seconds:.2f}", f"{ours_rate:,.0f}", ratio)
            table.add(label, "naive", n_events, n_blocks, f"{n_seconds:.2f}", f"{naive_rate:,.0f}", "1.0x")
            if stopped:
                table.notes.append(
                    f"{label}: the naive poller was stopped after {NAIVE_SECONDS:.0f} s "
                    f"({n_blocks:,} blocks); its rate is over what it did"
                )
            dispose_engines()
    table.notes += [
        "naive: one eth_getLogs per block, one database commit per event.",
        "Both strategies decode with the same ABI decoders and apply the same handlers to the same "
        "projections (token balances, vehicles, keys, ...) and event table, from the deployment block.",
        "Batched: adaptive eth_getLogs ranges, one transaction per ~25,000 events with bulk upserts, "
        "block headers only inside the reorg window (the last 128 blocks, with undo records).",
        "Goal: >= 5,000 events/s and >= 10x the naive poller.",
    ]
    use_settings(None)
    return table


def _merkle_table() -> Table:
    table = Table(f"Settlement for {MERKLE_MEMBERS:,} members", ["step", "seconds"])
    served = [
        Served(i + 1, "0x" + keccak(i.to_bytes(32, "big"))[:20].hex(), 1 + i % 7)
        for i in range(MERKLE_MEMBERS)
    ]
    started = time.perf_counter()
    shares = split_period([OrderPeriod(order_id=1, release=10**24, served=served)], carry=0)
    table.add("one period's shares (units-weighted, rounded down)", f"{time.perf_counter() - started:.2f}")
    del served
    leaves = sorted(shares.payouts.items())
    started = time.perf_counter()
    tree = ClaimTree.build(leaves)
    table.add("cumulative Merkle tree build (workers.merkle)", f"{time.perf_counter() - started:.2f}")
    started = time.perf_counter()
    for i in range(len(leaves)):
        tree.proof(i)
    table.add("every member's proof", f"{time.perf_counter() - started:.2f}")
    table.notes.append(
        f"{len(leaves):,} leaves, {format_cell(shares.paid)} of 10^24 paid, "
        f"{format_cell(shares.carry_out)} carried; goal: tree built in < 10 s"
    )
    return table


def run(ctx: BenchContext) -> list[Table]:
    history = _pump_history(ctx)
    with TemporaryDirectory() as tmp:
        manifest_file = Path(tmp) / "bench.json"
        Manifest(
            chain_id=ctx.manifest.chain_id, block=ctx.manifest.block, contracts=ctx.manifest.contracts
        ).write(manifest_file)
        tables = [_indexer_table(ctx, history, manifest_file)]
    tables.append(_merkle_table())
    return tables
