"""The privacy property, stateful (hypothesis): random sequences of grants, revokes, joins,
leaves, term changes, activations, transfers and buy-backs, purchases, order expiries,
operator slashes, buyer deactivations (de-whitelisting, slashing) and reactivations, and
vehicles driving (signals stored at chain time), on a real anvil, the real indexer following
(0 confirmations), then random gateway reads (latest and history from 0), commands and
datasets compared with the access rule evaluated here, independently, from the contracts'
views at the block the indexer applied and the times this test saw each transfer and join:

- 0 data served without consent (the gateway answered, the chain says no),
- 0 wrongful refusals (the gateway refused or answered nothing, the chain says yes),
- every answer is exactly the model's (the signals inside the paying order's window: the
  current tenure, since joining unless the terms require HISTORY), and no served value was
  recorded in a previous owner's tenure (nor the same owner's before a buy-back),
- an empty answer costs nothing, and the earliest-ending order with data pays,
- no aggregate below minCohort, and every aggregate is exactly the members with data in
  their window.

Each example starts from the same chain snapshot with a fresh database.

The second property (`PushPathsMachine`) runs the same histories, with privacy zones made and
moved, devices paired, unpaired and sending signed payloads, and stream orders, against the
paths that push or list: live-stream frames (the hub fed by the signal feed on the real Redis),
`GET /v1/vehicles` and the device ingest's cached pairings."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from web3.logs import DISCARD

from devkit.databases import migrated, sqlite_url
from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from devkit.market_world import MarketWorld
from tests.support.anvil import ANVIL_KEYS, AnvilNode
from tests.support.celery_worker import RedisServer
from tests.support.databases import close_databases, get_engine, session_scope
from tests.workers.gateway.conftest import sign
from workers import eip712
from workers.access import Purpose, may_use_order
from workers.chain import connect
from workers.config import Settings, get_settings, use_settings
from workers.datasets.build import build
from workers.db.gateway import ApiCredit, DatasetJob
from workers.db.settlement import UsageCounter
from workers.gateway.app import create_app
from workers.gateway.streams import OpenStream, StreamPlan, StreamRequest, plan, tick
from workers.indexer.sync import Indexer
from workers.oem.telemetry import (
    Accepted,
    Envelope,
    TelemetryRefused,
    TelemetryVerifier,
    ingest_batch,
    sign_envelope,
    telemetry_domain,
)
from workers.protocol import DIMO, MONTH_SECONDS, NO_END, Kind, Role
from workers.protocol.permissions import DRIVE, HISTORY, LIVE, LOCATION, LOCK, TELEMETRY, UNLOCK
from workers.signals import feed, zones
from workers.signals.store import SignalValue, store_signals
from workers.signals.zones import Zone

SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"
COMMANDS = {"lock": LOCK, "unlock": UNLOCK, "start": DRIVE}
DRIVER_KEY = ANVIL_KEYS[5]
STRANGER_KEY = ANVIL_KEYS[9]
MAX_VEHICLES = 7
MIN_COHORT = 2
EXAMPLES = 12
PUSH_EXAMPLES = 8
STEPS = 30

#: What the property test ran, for the report at the end of the module.
TALLY: Counter[str] = Counter()


@dataclass
class Fixture:
    node: AnvilNode
    world: MarketWorld
    snapshot: str
    template_db: Path
    directory: Path
    settings: Settings
    products: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    directory = tmp_path_factory.mktemp("privacy")
    node = AnvilNode(log_dir=directory)
    manifest, manifest_file = deploy_all(node.w3, ANVIL_DEPLOYER_KEY, directory=directory / "deployments")
    world = MarketWorld(node.w3, manifest).setup()
    redis_server = RedisServer(directory)
    products = {
        "api": world.create_product(Kind.API, permissions=TELEMETRY | LOCATION, tag="p-api"),
        "api_telemetry": world.create_product(Kind.API, permissions=TELEMETRY, tag="p-api-t"),
        "api_history": world.create_product(
            Kind.API, permissions=TELEMETRY | LOCATION | HISTORY, tag="p-api-h"
        ),
        "stream": world.create_product(Kind.STREAM, permissions=TELEMETRY | LOCATION | LIVE, tag="p-stream"),
        "dataset": world.create_product(
            Kind.DATASET, permissions=TELEMETRY, min_cohort=MIN_COHORT, tag="p-ds"
        ),
    }
    products["bundle"] = world.create_bundle(
        [products["stream"], products["api"]],
        [0, 4],
        permissions=TELEMETRY | LOCATION | LIVE,
        min_cohort=1,
        tag="p-bundle",
    )
    devices = world.contract("AftermarketDevice")
    world.send(world.dao_key, devices, "setManufacturer", world.address(world.dao_key), True)
    template = directory / "template.db"
    with migrated(sqlite_url(directory, "template.db")):
        pass
    close_databases()
    settings = get_settings().model_copy(
        update={
            "rpc_url": node.url,
            "deployment_file": manifest_file,
            "confirmations": 0,
            "access_cache_ttl": 0,
            "index_health_ttl": 0,
            "index_max_blocks_behind": 4,  # a stale-index step mines 6 blocks, not 66
            "rate_limit_per_second": 1e6,
            "rate_limit_burst": 10**6,
            "broker_url": redis_server.url,
            "result_backend": None,
        }
    )
    snapshot = node.snapshot()
    try:
        yield Fixture(node, world, snapshot, template, directory, settings, products)
    finally:
        redis_server.stop()
        node.stop()
        close_databases()
    print(f"\nprivacy property: {dict(TALLY)}")


class Oracle:
    """The access rule, evaluated from the contracts' views at one block (not from the index)."""

    def __init__(self, world: MarketWorld, block: int, now: int) -> None:
        self.world = world
        self.block = block
        self.now = now

    def _call(self, fn: Any) -> Any:
        return fn.call(block_identifier=self.block)

    def product(self, product_id: int) -> tuple[str, int, bool, tuple]:
        return self._call(self.world.products.functions.product(product_id))

    def member(self, product_id: int, vehicle_id: int) -> bool:
        return bool(self._call(self.world.products.functions.isMember(product_id, vehicle_id)))

    def is_active(self, account: str, role: Role) -> bool:
        return bool(self._call(self.world.staking.functions.isActive(to_checksum_address(account), role)))

    def operator_active(self, operator: str) -> bool:
        return self.is_active(operator, Role.OPERATOR)

    def buyer_active(self, buyer: str) -> bool:
        return self.is_active(buyer, Role.CONSUMER) or self.is_active(buyer, Role.BROKER)

    def order(self, order_id: int) -> tuple:
        return self._call(self.world.market.functions.order(order_id))

    def may_call(
        self, caller: str, product_id: int, vehicle_id: int, mask: int, *, orders: list[int], used: Counter
    ) -> dict[int, tuple[int, int]]:
        """A metered read: Api product active, operator active, buyer active, signals within
        its permissions, and a live entitlement (credits left, in time) whose consent product
        the vehicle joined. Returns the orders that may pay for it with their consent product
        and end (empty: refuse)."""
        valid: dict[int, tuple[int, int]] = {}
        operator, _, active, terms = self.product(product_id)
        if terms[0] != Kind.API or not active or not self.operator_active(operator) or mask & ~terms[6]:
            return valid
        if not self.buyer_active(caller):
            return valid
        for order_id in orders:
            ordered, buyer, _, quantity, _, starts, ends, _ = self.order(order_id)
            if buyer.lower() != caller.lower() or not starts <= self.now < ends:
                continue
            if ordered == product_id:
                consent, allowance = product_id, quantity
            else:
                ids, quantities = self._call(self.world.products.functions.components(ordered))
                if product_id not in ids:
                    continue
                b_operator, _, b_active, b_terms = self.product(ordered)
                if not b_active or mask & ~b_terms[6] or not self.operator_active(b_operator):
                    continue
                months = max(1, (ends - starts + MONTH_SECONDS // 2) // MONTH_SECONDS)
                consent, allowance = ordered, quantities[list(ids).index(product_id)] * months
            if used[(order_id, product_id)] >= allowance:
                continue
            if self.member(consent, vehicle_id):
                valid[order_id] = (consent, ends)
        return valid


class PrivacyMachine(RuleBasedStateMachine):
    """One example: a chain history built step by step, the gateway checked after each read."""

    fx: Fixture

    @initialize()
    def start(self) -> None:
        fx = self.fx
        fx.node.revert(fx.snapshot)
        fx.snapshot = fx.node.snapshot()  # anvil snapshots are single-use
        TALLY["sequences"] += 1
        self.db_path = fx.directory / f"example-{TALLY['sequences']}.db"
        shutil.copyfile(fx.template_db, self.db_path)
        self.db_url = f"sqlite:///{self.db_path}"
        self.settings = fx.settings.model_copy(update={"database_url": self.db_url})
        use_settings(self.settings)
        self.indexer = Indexer(connect(self.settings), get_engine(self.db_url), self.settings)
        self.client = TestClient(create_app(self.settings), base_url="http://localhost:8000")
        self.consumers = list(fx.world.consumer_keys)
        self.tokens = {key: self._sign_in(key) for key in self.consumers}
        self.vehicles: dict[int, str] = {}  # vehicle -> owner key
        #: vehicle -> (tenure number, its start: the block time of the vehicle's last transfer)
        self.tenure: dict[int, tuple[int, int]] = {}
        #: (product, vehicle) -> the block time of the vehicle's last join
        self.joined: dict[tuple[int, int], int] = {}
        #: vehicle -> every stored observation: (name, value, unix ms, tenure number)
        self.stored: dict[int, list[tuple[str, float, int, int]]] = {}
        self.values = 0.0
        self.drive_block, self.drives = 0, 0
        #: vehicle -> the owners before the current one (a transfer back is a buy-back)
        self.owners_before: dict[int, set[str]] = {}
        self.orders: list[int] = []
        self.used: Counter[tuple[int, int]] = Counter()
        self._base_story()

    def _base_story(self) -> None:
        """Every example starts from a few members and orders, then goes its own way."""
        world, products = self.fx.world, self.fx.products
        for owner in (0, 1, 2, 0):
            self.mint(owner)
        v1, v2, v3, v4 = sorted(self.vehicles)
        for vehicle, which in (
            (v1, "api"),
            (v1, "api_telemetry"),
            (v1, "api_history"),
            (v1, "bundle"),
            (v2, "api"),
            (v3, "bundle"),
            (v3, "dataset"),
            (v4, "dataset"),
        ):
            world.join(self.vehicles[vehicle], products[which], vehicle)
            self.joined[(products[which], vehicle)] = self._chain_time()
        for vehicle in (v1, v3, v4):
            self._drive(vehicle)
        self.orders.append(world.buy_credits(self.consumers[0], products["api"], 8))
        self.orders.append(world.buy_credits(self.consumers[0], products["api_telemetry"], 8))
        self.orders.append(world.buy_credits(self.consumers[1], products["api_history"], 8))
        self.orders.append(world.buy_credits(self.consumers[1], products["api"], 4))
        self.orders.append(world.subscribe(self.consumers[1], products["bundle"], 1, 1))

    def teardown(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
        close_databases()
        use_settings(None)

    def _sign_in(self, key: str) -> str:
        address = Account.from_key(key).address
        message = self.client.post("/auth/nonce", json={"address": address}).json()["message"]
        answer = self.client.post("/auth/verify", json={"message": message, "signature": sign(message, key)})
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def _try(self, fn: Any, *args: Any) -> bool:
        """A chain action the contracts may refuse (that is part of the story)."""
        try:
            fn(*args)
        except Exception:
            TALLY["actions refused by the chain"] += 1
            return False
        TALLY["actions"] += 1
        return True

    def _sync(self) -> Oracle:
        report = self.indexer.sync()
        block = (
            report.target
            if report.target is not None and report.target >= 0
            else self.fx.node.w3.eth.block_number
        )
        timestamp = self.fx.node.w3.eth.get_block(block)["timestamp"]
        return Oracle(self.fx.world, block, max(int(time.time()), int(timestamp)))

    # --- chain actions ----------------------------------------------------------------------

    # --- chain actions (one rule draws which, so every action is as likely) ---------------

    ACTIONS = (
        "mint_vehicle", "join", "join", "leave", "grant", "revoke", "transfer", "change_terms",
        "set_active", "buy_credits", "subscribe_bundle", "expire_orders", "slash_operator",
        "drive", "drive", "deactivate_buyer", "reactivate_buyer",
    )  # fmt: skip

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One step: 0-3 chain actions, the indexer follows, then 1-4 gateway reads, 0-2
        commands and, one step in four, a dataset."""
        TALLY["steps"] += 1
        for _ in range(data.draw(st.integers(0, 3), label="actions")):
            action = data.draw(st.sampled_from(self.ACTIONS), label="action")
            TALLY[f"action {action}"] += 1
            getattr(self, action)(data)
        self.reads(data, data.draw(st.integers(1, 4), label="reads"))
        for _ in range(data.draw(st.integers(0, 2), label="commands")):
            self.command(
                data,
                data.draw(st.sampled_from(["owner", "driver", "stranger"]), label="caller"),
                data.draw(st.sampled_from(sorted(COMMANDS)), label="command"),
            )
        if data.draw(st.integers(0, 3), label="dataset?") == 0:
            self.dataset(data.draw(st.sampled_from(range(2)), label="buyer"))

    def _vehicle(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.vehicles)), label="vehicle")

    def mint_vehicle(self, data: st.DataObject) -> None:
        if len(self.vehicles) < MAX_VEHICLES:
            self.mint(data.draw(st.sampled_from(range(3)), label="owner"))

    def _chain_time(self) -> int:
        """The time of the latest block: that of the transaction just sent (anvil mines one a tx)."""
        return int(self.fx.node.w3.eth.get_block("latest")["timestamp"])

    def mint(self, owner: int) -> None:
        key = self.fx.world.owner_keys[owner]
        vehicle = self.fx.world.mint(key)
        self.vehicles[vehicle] = key
        self.tenure[vehicle] = (0, self._chain_time())
        self.stored[vehicle] = []
        self._drive(vehicle)

    def _drive(self, vehicle: int) -> None:
        """The vehicle reports a speed and a latitude, observed in the second of a new block a
        second later (so after every transaction so far), before its time (so strictly before
        any later transfer or join), each value and time unique."""
        self.fx.node.increase_time(1)
        block_time = self._chain_time()
        self.drives = self.drives + 1 if self.drive_block == block_time else 0
        self.drive_block = block_time
        at = block_time * 1000 - 500 + self.drives
        observations = []
        for name in (SPEED, LAT):
            self.values += 1
            observations.append(SignalValue(name, self.values, None, at, "oem:1"))
            self.stored[vehicle].append((name, self.values, at, self.tenure[vehicle][0]))
        with session_scope(self.db_url) as session:
            store_signals(session, vehicle, observations)

    def drive(self, data: st.DataObject) -> None:
        self._drive(self._vehicle(data))

    def join(self, data: st.DataObject) -> None:
        vehicle = self._vehicle(data)
        which = data.draw(
            st.sampled_from(["api", "api_telemetry", "api_history", "bundle", "dataset", "stream"])
        )
        product = self.fx.products[which]
        if self._try(self.fx.world.join, self.vehicles[vehicle], product, vehicle):
            self.joined[(product, vehicle)] = self._chain_time()

    def leave(self, data: st.DataObject) -> None:
        vehicle = self._vehicle(data)
        which = data.draw(st.sampled_from(["api", "api_telemetry", "api_history", "bundle", "dataset"]))
        self._try(self.fx.world.leave, self.vehicles[vehicle], self.fx.products[which], vehicle)

    def grant(self, data: st.DataObject) -> None:
        vehicle = self._vehicle(data)
        permissions = data.draw(st.sampled_from([LOCK, UNLOCK, DRIVE, LOCK | UNLOCK, LOCK | UNLOCK | DRIVE]))
        now = self.fx.node.w3.eth.get_block("latest")["timestamp"]
        expiry = now + 5 if data.draw(st.booleans(), label="short-lived") else NO_END
        driver = Account.from_key(DRIVER_KEY).address
        self._try(self.fx.world.grant, self.vehicles[vehicle], vehicle, driver, permissions, expiry)

    def revoke(self, data: st.DataObject) -> None:
        vehicle = self._vehicle(data)
        self._try(self.fx.world.revoke, self.vehicles[vehicle], vehicle, Account.from_key(DRIVER_KEY).address)

    def transfer(self, data: st.DataObject) -> None:
        vehicle = self._vehicle(data)
        new_owner = self.fx.world.owner_keys[data.draw(st.sampled_from(range(3)), label="to")]
        earlier = sorted(self.owners_before.get(vehicle, set()) - {self.vehicles[vehicle]})
        if earlier and data.draw(st.booleans(), label="buy back"):
            new_owner = data.draw(st.sampled_from(earlier), label="previous owner")
        if self._try(
            self.fx.world.transfer, self.vehicles[vehicle], vehicle, Account.from_key(new_owner).address
        ):
            held = {self.vehicles[vehicle]}
            TALLY["transfers"] += 1
            if new_owner in self.owners_before.get(vehicle, set()) and new_owner not in held:
                TALLY["buy-backs"] += 1
            self.owners_before.setdefault(vehicle, set()).add(self.vehicles[vehicle])
            self.vehicles[vehicle] = new_owner
            self.tenure[vehicle] = (self.tenure[vehicle][0] + 1, self._chain_time())

    def change_terms(self, data: st.DataObject) -> None:
        which = data.draw(st.sampled_from(["api", "api_telemetry", "bundle"]))
        kind = {"api": Kind.API, "api_telemetry": Kind.API, "bundle": Kind.BUNDLE}[which]
        permissions = TELEMETRY if data.draw(st.booleans(), label="drop location") else TELEMETRY | LOCATION
        if which == "bundle":
            permissions |= LIVE | LOCATION  # a bundle must cover its components
        product, tag, cohort = (
            self.fx.products[which],
            f"v{TALLY['actions']}",
            1 if kind == Kind.BUNDLE else 0,
        )
        self._try(
            lambda: self.fx.world.update_terms(
                product, kind, permissions=permissions, min_cohort=cohort, tag=tag
            )
        )

    def set_active(self, data: st.DataObject) -> None:
        which = data.draw(st.sampled_from(["api", "api_telemetry", "bundle"]))
        active = data.draw(st.integers(0, 2), label="active") > 0
        self._try(self.fx.world.set_active, self.fx.products[which], active)

    def buy_credits(self, data: st.DataObject) -> None:
        consumer = self.consumers[data.draw(st.sampled_from(range(2)), label="consumer")]
        product = self.fx.products[data.draw(st.sampled_from(["api", "api_telemetry"]))]
        calls = data.draw(st.integers(1, 5), label="calls")
        self._try(lambda: self.orders.append(self.fx.world.buy_credits(consumer, product, calls)))

    def subscribe_bundle(self, data: st.DataObject) -> None:
        consumer = self.consumers[data.draw(st.sampled_from(range(2)), label="consumer")]
        bundle = self.fx.products["bundle"]
        self._try(lambda: self.orders.append(self.fx.world.subscribe(consumer, bundle, 1, 1)))

    def expire_orders(self, data: st.DataObject) -> None:
        """A month passes: subscriptions end (credit orders never do)."""
        self.fx.node.increase_time(MONTH_SECONDS + 1)

    def deactivate_buyer(self, data: st.DataObject) -> None:
        """The DAO de-whitelists a consumer or slashes its stake below the required stake."""
        world = self.fx.world
        consumer = self.consumers[data.draw(st.sampled_from(range(2)), label="consumer")]
        account = world.address(consumer)
        if data.draw(st.booleans(), label="slash"):
            active = world.staking.functions.stakeOf(account).call()[0]
            self._try(world.slash, account, active)
        else:
            self._try(
                world.send, world.dao_key, world.staking, "setWhitelisted", account, Role.CONSUMER, False
            )

    def reactivate_buyer(self, data: st.DataObject) -> None:
        """A consumer is whitelisted again and tops its stake up."""
        world = self.fx.world
        consumer = self.consumers[data.draw(st.sampled_from(range(2)), label="consumer")]
        self._try(world.stake, consumer, Role.CONSUMER, 1_000 * DIMO)

    def slash_operator(self, data: st.DataObject) -> None:
        restake = data.draw(st.integers(0, 3), label="restake") > 0  # mostly the operator tops up again
        if self._try(self.fx.world.slash_operator, DIMO) and restake:
            self._try(self.fx.world.restake_operator, DIMO)

    # --- checks -----------------------------------------------------------------------------

    @rule(data=st.data())
    def step_after_a_stale_index(self, data: st.DataObject) -> None:
        """One time in eight the index falls behind first (#14, fail closed), then a step."""
        if data.draw(st.integers(0, 7), label="index falls behind?") == 0:
            self.index_falls_behind(data)
        self.step(data)

    def index_falls_behind(self, data: st.DataObject) -> None:
        """The chain runs INDEX_MAX_BLOCKS_BEHIND + 2 blocks ahead and the indexer applies one:
        whatever the rule would say, a read answers 503 `index_stale`. The step's reads sync
        the index first and are checked under the rule again."""
        TALLY["stale-index steps"] += 1
        self.fx.node.mine(self.settings.index_max_blocks_behind + 2)
        self.indexer.sync(max_blocks=1)
        vehicle = data.draw(st.sampled_from(sorted(self.vehicles)), label="vehicle")
        key = self.consumers[data.draw(st.sampled_from(range(2)), label="consumer")]
        product = self.fx.products[data.draw(st.sampled_from(["api", "api_telemetry"]), label="product")]
        answer = self.client.get(
            f"/v1/products/{product}/vehicles/{vehicle}/signals/latest",
            headers={"Authorization": f"Bearer {self.tokens[key]}"},
        )
        TALLY["reads refused: index_stale"] += 1
        assert answer.status_code == 503, f"served from an index behind the chain: {answer.text}"
        assert answer.json()["reason"] == "index_stale", answer.text

    def reads(self, data: st.DataObject, count: int) -> None:
        """A burst of random reads (after whatever the chain went through)."""
        for _ in range(count):
            self.read(
                data.draw(st.sampled_from(sorted(self.vehicles))),
                data.draw(st.sampled_from(range(2))),
                data.draw(st.sampled_from(["api", "api_telemetry", "api_history"])),
                data.draw(st.sampled_from([None, SPEED, LAT])),
                data.draw(st.sampled_from(["latest", "history"]), label="path"),
            )

    def window(self, oracle: Oracle, consent: int, vehicle: int) -> int:
        """The model's window start (unix ms) for an order consented through `consent`."""
        _, _, _, terms = oracle.product(consent)
        start = self.tenure[vehicle][1]
        if not terms[6] & HISTORY:
            start = max(start, self.joined[(consent, vehicle)])
        return start * 1000

    def expected_answer(
        self, vehicle: int, since_ms: int, names: set[str], path: str
    ) -> list[tuple[str, float]]:
        """What the gateway must answer within a window: latest (per name, the newest
        observation, when inside it) or history (every observation inside it, oldest first)."""
        inside = [o for o in self.stored[vehicle] if o[0] in names]
        if path == "latest":
            newest: dict[str, tuple[str, float, int, int]] = {}
            for o in inside:
                if o[0] not in newest or o[2] >= newest[o[0]][2]:
                    newest[o[0]] = o
            return sorted((o[0], o[1]) for o in newest.values() if o[2] >= since_ms)
        return [(o[0], o[1]) for o in sorted(inside, key=lambda o: o[2]) if o[2] >= since_ms]

    def read(self, vehicle: int, consumer: int, which: str, names: str | None, path: str) -> None:
        oracle = self._sync()
        key = self.consumers[consumer]
        caller = Account.from_key(key).address
        product = self.fx.products[which]
        _, _, _, terms = oracle.product(product)
        exposed = terms[6] & (TELEMETRY | LOCATION)
        mask = (LOCATION if names == LAT else TELEMETRY) if names else (exposed or TELEMETRY)
        carried = {SPEED, LAT} if names is None else {names}
        carried = {n for n in carried if (LOCATION if n == LAT else TELEMETRY) & (mask if names else exposed)}
        valid = oracle.may_call(caller, product, vehicle, mask, orders=self.orders, used=self.used)
        answers = {
            order: self.expected_answer(vehicle, self.window(oracle, consent, vehicle), carried, path)
            for order, (consent, _) in valid.items()
        }
        payer = next(
            (o for o in sorted(valid, key=lambda o: (valid[o][1], o)) if answers[o]),
            None,
        )
        query = f"?names={names}" if names else ""
        if path == "history":
            query = f"{query}{'&' if query else '?'}from=0"
        route = "signals/latest" if path == "latest" else "signals"
        answer = self.client.get(
            f"/v1/products/{product}/vehicles/{vehicle}/{route}{query}",
            headers={"Authorization": f"Bearer {self.tokens[key]}"},
        )
        TALLY["reads"] += 1
        TALLY[f"reads {path}"] += 1
        assert answer.status_code != 500, answer.text
        if answer.status_code == 200:
            assert valid, f"data served without consent: vehicle {vehicle} product {product} to {caller}"
            body = answer.json()
            assert body["vehicle_id"] == vehicle
            served = [(s["name"], s["value"]) for s in body["signals"]]
            current = self.tenure[vehicle][0]
            tenure_of = {(o[0], o[1]): o[3] for o in self.stored[vehicle]}
            assert all(tenure_of[s] == current for s in served), (
                f"a previous tenure's data served: vehicle {vehicle} {served}"
            )
            if not served:
                TALLY["reads served empty"] += 1
                assert payer is None, f"nothing served, but order {payer} may have {answers[payer]}"
                self._charged(product, expect_none=True)
                return
            TALLY["reads served"] += 1
            paid_by = self._charged(product)
            assert paid_by == payer, f"order {paid_by} paid, the model says {payer} ({sorted(valid)})"
            got = sorted(served) if path == "latest" else served
            assert got == answers[payer], f"served {got}, the model says {answers[payer]}"
        else:
            TALLY["reads refused"] += 1
            reason = answer.json().get("reason")
            assert not valid, f"wrongful refusal ({reason}): vehicle {vehicle} product {product} {valid}"
            TALLY[f"reads refused {reason}"] += 1
            if reason == "buyer_inactive":
                assert not oracle.buyer_active(caller)

    def _charged(self, product: int, *, expect_none: bool = False) -> int | None:
        """The order the gateway took the credit from (its credit counter names it); counted."""
        with session_scope(self.db_url, read_only=True) as session:
            counters = session.scalars(select(ApiCredit)).all()
        spent = Counter({(int(c.order_id), int(c.product_id)): c.total - c.remaining for c in counters})
        changed = [k for k, v in spent.items() if v != self.used[k]]
        if expect_none:
            assert not changed, f"an empty answer was charged: {changed}"
            return None
        assert (
            len(changed) == 1 and changed[0][1] == product and spent[changed[0]] == self.used[changed[0]] + 1
        )
        self.used = spent
        return changed[0][0]

    def command(self, data: st.DataObject, who: str, command: str) -> None:
        vehicle = data.draw(st.sampled_from(sorted(self.vehicles)))
        key = {"owner": self.vehicles[vehicle], "driver": DRIVER_KEY, "stranger": STRANGER_KEY}[who]
        caller = Account.from_key(key).address
        token = self.tokens.get(key) or self._sign_in(key)
        self.tokens[key] = token
        expected = self.fx.world.vehicles.functions.hasPermissions(vehicle, caller, COMMANDS[command]).call()
        answer = self.client.post(
            f"/v1/vehicles/{vehicle}/commands/{command}", headers={"Authorization": f"Bearer {token}"}
        )
        TALLY["commands"] += 1
        if answer.status_code == 202:
            TALLY["commands accepted"] += 1
            assert expected, f"command {command} on vehicle {vehicle} accepted from {who} without the bit"
        else:
            assert answer.json()["reason"] == "no_permission", answer.text
            assert not expected, f"command {command} on vehicle {vehicle} wrongly refused to {who}"

    def dataset(self, consumer: int) -> None:
        key = self.consumers[consumer]
        try:
            order = self.fx.world.purchase_dataset(key, self.fx.products["dataset"])
        except Exception:
            return
        oracle = self._sync()
        product = self.fx.products["dataset"]
        operator, _, active, terms = oracle.product(product)
        members = {v for v in self.vehicles if oracle.member(product, v)}
        answer = self.client.post(
            f"/v1/orders/{order}/dataset",
            json={"metric": SPEED},
            headers={"Authorization": f"Bearer {self.tokens[key]}"},
        )
        TALLY["datasets asked"] += 1
        if answer.status_code == 422 and answer.json()["reason"] == "cohort_too_small":
            assert len(members) < terms[8], f"a cohort of {len(members)} members was refused"
            return
        if answer.status_code != 202:
            caller = Account.from_key(key).address
            assert not active or not oracle.operator_active(operator) or not oracle.buyer_active(caller), (
                answer.text
            )
            return
        # members with a speed inside their window (current tenure, since joining)
        with_data = {
            v for v in members if self.expected_answer(v, self.window(oracle, product, v), {SPEED}, "latest")
        }
        job = answer.json()["job_id"]
        with session_scope(self.db_url) as session:
            status = build(
                session, job, lambda account, role, _block: oracle.is_active(account, role), 86_400
            )
        with session_scope(self.db_url, read_only=True) as session:
            row = session.get(DatasetJob, job)
            # usage counts once per (order, vehicle, period): every job of the order so far
            counted = {
                int(v)
                for v in session.scalars(
                    select(UsageCounter.vehicle_id).where(UsageCounter.order_id == row.order_id)
                ).all()
            }
        TALLY[f"datasets {status}"] += 1
        if status != "done":
            assert len(with_data) < terms[8], f"{len(with_data)} members with data, minCohort {terms[8]}"
        else:
            result = json.loads(row.result)
            assert row.cohort >= terms[8] >= MIN_COHORT
            assert row.cohort == len(with_data), f"aggregated {row.cohort}, the model says {with_data}"
            assert result["columns"] == ["group", "vehicles", "mean", "mean_scale"], result
            assert 0 < result["privacy"]["epsilon"] <= row.epsilon
            assert with_data <= counted, f"counted {counted} for the order, the model says {with_data}"


#: The run takes ~3 minutes on a quiet 2-core machine and up to ~15 while `make test` runs
#: the other suites beside it; the default per-test timeout (10 minutes) is for one test.
@pytest.mark.timeout(1800)
def test_privacy_property(fixture: Fixture) -> None:
    PrivacyMachine.fx = fixture
    run(PrivacyMachine, EXAMPLES)
    assert TALLY["reads"] > 0 and TALLY["commands"] > 0


def run(machine: type[PrivacyMachine], examples: int) -> None:
    """`examples` histories of `STEPS` steps each (no deadline: a step runs a chain)."""
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


# --- the push paths: live streams, the caller's vehicle list, device ingest ---------------------

LON = "Vehicle.CurrentLocation.Longitude"
FEED_URL = "redis://127.0.0.1:6379/0"
#: Values published on the feed by no store write: a hub must never show them.
FOREIGN = -1.0e6
#: Seconds a frame may lag the store (the feed's push still on its way) before it must match.
PUSH_WAIT = 5.0


@dataclass
class Stream:
    """A stream the test holds open, as a consumer holding the connection would."""

    open: OpenStream
    buyer: str


class PushPathsMachine(PrivacyMachine):
    """The same histories (every action of `PrivacyMachine`, and zones, devices and stream
    orders), checked on the paths that push or list instead of answering a metered read:

    - every open stream's frames (`workers.gateway.streams.tick` with the process's hub fed by
      the real signal feed) carry exactly the vehicles the rule allows at the indexed block,
      each only with observations of its current tenure inside the order's window, privacy
      zones applied (none of a zone's raw locations from the first tick after it is made), and
      a stream ends when the order-level rule stops it (order ended, buyer or product inactive);
    - values pushed on the feed for vehicles no stream carries are never shown;
    - `GET /v1/vehicles` lists exactly the vehicles the caller owns at the indexed block, with
      the connection and the device live-paired there, nothing else;
    - a device payload is stored only under the vehicle it is live-paired with at the indexed
      block (the ingest's pairing cache, warm from earlier batches, follows unpairings, vehicle
      transfers and re-pairings), refused `unpaired` otherwise."""

    ACTIONS = (
        *PrivacyMachine.ACTIONS,
        "subscribe_stream", "add_zone", "add_zone", "plug_device", "plug_device", "unpair_device",
        "unpair_device", "device_publish", "device_publish", "device_publish",
    )  # fmt: skip

    @initialize()
    def start(self) -> None:
        #: vehicle -> zones made in a tenure: (tenure number, zone)
        self.zones: dict[int, list[tuple[int, Zone]]] = {}
        self.streams: dict[int, Stream] = {}
        #: device -> (signer key, next sequence)
        self.devices: dict[int, tuple[str, int]] = {}
        self.device_contract = self.fx.world.contract("AftermarketDevice")
        super().start()
        self.state = self.client.app.state.gateway
        assert self.state.stream_hub.wait_live(10), f"no signal feed at {FEED_URL}"
        chain_id = self.fx.node.w3.eth.chain_id
        self.verifier = TelemetryVerifier(
            telemetry_domain(chain_id, self.device_contract.address),
            max_age=self.settings.telemetry_max_age,
            max_future=self.settings.telemetry_max_future,
            clock=lambda: float(self._chain_time()),
        )
        self.device_domain = eip712.domain(eip712.DEVICE_DOMAIN, chain_id, self.device_contract.address)

    def teardown(self) -> None:
        if hasattr(self, "state"):
            for stream in self.streams.values():
                stream.open.close(self.state.stream_hub)
            self.state.stream_hub.close()
        super().teardown()

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One step: 0-3 chain actions, the indexer follows, then every push path is checked."""
        TALLY["push steps"] += 1
        for _ in range(data.draw(st.integers(0, 3), label="actions")):
            action = data.draw(st.sampled_from(self.ACTIONS), label="action")
            TALLY[f"action {action}"] += 1
            getattr(self, action)(data)
        oracle = self._sync()
        self.check_vehicle_lists(oracle)
        carried = self.check_streams(oracle)
        if carried and data.draw(st.integers(0, 2), label="move a zone?") == 0:
            self.move_zone(data, oracle, carried)

    # --- what a vehicle reports: a speed and a position ------------------------------------

    def _drive(self, vehicle: int) -> None:
        """As `PrivacyMachine._drive`, with a latitude and longitude pair (a zone can only
        contain a whole position) a few metres from the last one."""
        self.fx.node.increase_time(1)
        block_time = self._chain_time()
        self.drives = self.drives + 1 if self.drive_block == block_time else 0
        self.drive_block = block_time
        at = block_time * 1000 - 500 + self.drives
        self._store(vehicle, [(name, value, at, "oem:1") for name, value in self._position().items()])

    def _position(self) -> dict[str, float]:
        self.values += 1
        step = self.values * 1e-4  # ~11 m a step: a zone holds a vehicle's next few positions
        return {SPEED: self.values, LAT: round(40.0 + step, 6), LON: round(-3.0 - step, 6)}

    def _store(self, vehicle: int, observed: list[tuple[str, float, int, str]]) -> None:
        """Stores `observed` (name, value, ms, source) for `vehicle` and records it in the model."""
        for name, value, at, _ in observed:
            self.stored[vehicle].append((name, value, at, self.tenure[vehicle][0]))
        with session_scope(self.db_url) as session:
            store_signals(session, vehicle, [SignalValue(n, v, None, at, src) for n, v, at, src in observed])

    # --- actions ------------------------------------------------------------------------------

    def subscribe_stream(self, data: st.DataObject) -> None:
        consumer = self.consumers[data.draw(st.sampled_from(range(2)), label="consumer")]
        vehicles = data.draw(st.integers(1, 4), label="vehicles")
        stream = self.fx.products["stream"]
        self._try(lambda: self.orders.append(self.fx.world.subscribe(consumer, stream, vehicles, 1)))

    def add_zone(
        self,
        data: st.DataObject,
        vehicle: int | None = None,
        *,
        offset: float | None = None,
        radius: float | None = None,
    ) -> Zone | None:
        """The owner names the vehicle's last position (or a place near it) a privacy zone;
        the zone (None: the tenure has as many as allowed)."""
        vehicle = self._vehicle(data) if vehicle is None else vehicle
        last = {o[0]: o[1] for o in sorted(self.stored[vehicle], key=lambda o: o[2])}
        if offset is None:
            offset = data.draw(st.sampled_from([0.0, 5e-4, 0.02]), label="zone offset")
        if radius is None:
            radius = data.draw(st.sampled_from([100.0, 500.0, 3_000.0]), label="radius")
        body = {"label": "home", "latitude": last[LAT] + offset, "longitude": last[LON], "radius_m": radius}
        key = self.vehicles[vehicle]
        self._sync()  # the gateway checks ownership on a fresh index
        answer = self.client.post(f"/v1/vehicles/{vehicle}/zones", json=body, headers=self._auth(key))
        if answer.status_code == 409 and answer.json()["reason"] == "too_many_zones":
            return None
        assert answer.status_code == 201, answer.text
        made = answer.json()
        zone = Zone(
            made["zone_id"], vehicle, "home", made["latitude"], made["longitude"], made["radius_m"], 0
        )
        self.zones.setdefault(vehicle, []).append((self.tenure[vehicle][0], zone))
        TALLY["zones made"] += 1
        return zone

    def move_zone(self, data: st.DataObject, oracle: Oracle, carried: set[int]) -> None:
        """The owner of a streamed vehicle names a place 2 km off a zone (the streams are
        checked), then removes it and names the vehicle's last position instead: the streams
        are checked again, with no block between (the new zone may get the removed one's id)."""
        vehicle = data.draw(st.sampled_from(sorted(carried)), label="vehicle")
        away = self.add_zone(data, vehicle, offset=0.02, radius=100.0)
        if away is None:
            return
        self.check_streams(oracle)
        answer = self.client.delete(
            f"/v1/vehicles/{vehicle}/zones/{away.zone_id}", headers=self._auth(self.vehicles[vehicle])
        )
        assert answer.status_code == 204, answer.text
        self.zones[vehicle].remove((self.tenure[vehicle][0], away))
        if self.add_zone(data, vehicle, offset=0.0, radius=100.0) is not None:
            TALLY["zones moved"] += 1
            self.check_streams(oracle)

    def plug_device(self, data: st.DataObject) -> None:
        """A device is minted to a vehicle's owner and paired with the vehicle by both."""
        vehicle = self._vehicle(data)
        world, devices = self.fx.world, self.device_contract
        owner_key = self.vehicles[vehicle]
        signer_key = "0x" + keccak(text=f"privacy device {len(self.devices)}").hex().removeprefix("0x")
        receipt = world.send(
            world.dao_key,
            devices,
            "mintDevice",
            world.address(owner_key),
            Account.from_key(signer_key).address,
            keccak(text=f"serial {len(self.devices)}"),
        )
        device = int(
            devices.events.DeviceMinted().process_receipt(receipt, errors=DISCARD)[0]["args"]["deviceId"]
        )
        self.devices[device] = (signer_key, 1)
        nonce = eip712.free_nonce(devices, Account.from_key(signer_key).address)
        deadline = self._chain_time() + 3_600
        typed_pair = eip712.pair(
            self.device_domain, vehicle_id=vehicle, device_id=device, nonce=nonce, deadline=deadline
        )
        self._try(
            world.send,
            owner_key,
            devices,
            "pair",
            vehicle,
            device,
            nonce,
            deadline,
            eip712.sign(typed_pair, signer_key),
        )

    def unpair_device(self, data: st.DataObject) -> None:
        vehicle = self._vehicle(data)
        self._try(self.fx.world.send, self.vehicles[vehicle], self.device_contract, "unpair", vehicle)

    def device_publish(self, data: st.DataObject) -> None:
        """1-3 devices each send a signed position in one batch, after the index caught up:
        each is stored under the vehicle the chain says it is live-paired with, or refused."""
        if not self.devices:
            return
        chosen = sorted(
            set(data.draw(st.lists(st.sampled_from(sorted(self.devices)), min_size=1, max_size=3)))
        )
        self.fx.node.increase_time(1)  # a second after every transaction so far
        oracle = self._sync()
        now = self._chain_time()
        envelopes, positions = [], {}
        for device in chosen:
            key, sequence = self.devices[device]
            self.devices[device] = (key, sequence + 1)
            positions[device] = self._position()
            body = sign_envelope(
                telemetry_domain(self.fx.node.w3.eth.chain_id, self.device_contract.address),
                key,
                device_id=device,
                sequence=sequence,
                timestamp=now,
                signals=positions[device],
            )
            envelopes.append(Envelope.parse(body))
        outcomes = ingest_batch(self.state.database, self.verifier, envelopes)
        self.fx.node.increase_time(1)  # every later transaction a second after the payloads
        for device, outcome in zip(chosen, outcomes, strict=True):
            paired = int(
                self.device_contract.functions.vehicleOfDevice(device).call(block_identifier=oracle.block)
            )
            if not paired:
                assert isinstance(outcome, TelemetryRefused), (
                    f"device {device} is paired with no vehicle, stored under vehicle {outcome.vehicle_id}"
                )
                assert outcome.reason == "unpaired", outcome
                TALLY["device payloads refused"] += 1
                continue
            assert isinstance(outcome, Accepted), f"device {device} is paired with {paired}: {outcome}"
            assert outcome.vehicle_id == paired, (
                f"device {device}'s payload stored under vehicle {outcome.vehicle_id}, paired with {paired}"
            )
            TALLY["device payloads stored"] += 1
            for name, value in positions[device].items():
                self.stored[paired].append((name, value, now * 1000, self.tenure[paired][0]))

    # --- checks -----------------------------------------------------------------------------

    def _auth(self, key: str) -> dict[str, str]:
        if key not in self.tokens:
            self.tokens[key] = self._sign_in(key)
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def check_vehicle_lists(self, oracle: Oracle) -> None:
        """`GET /v1/vehicles` for every owner, the key holder and a stranger."""
        vehicles = self.fx.world.vehicles.functions
        devices = self.device_contract.functions
        owner_of = {v: vehicles.ownerOf(v).call(block_identifier=oracle.block).lower() for v in self.vehicles}
        for key in (*self.fx.world.owner_keys, DRIVER_KEY, STRANGER_KEY):
            caller = Account.from_key(key).address.lower()
            answer = self.client.get("/v1/vehicles", headers=self._auth(key))
            assert answer.status_code == 200, answer.text
            expected = [
                {
                    "vehicle_id": v,
                    "make": None,
                    "model": None,
                    "connection_id": self.fx.world.connection_id,
                    "connection": "sim",
                    "device_id": int(devices.deviceOf(v).call(block_identifier=oracle.block)) or None,
                }
                for v in sorted(self.vehicles)
                if owner_of[v] == caller
            ]
            assert answer.json() == expected, f"GET /v1/vehicles for {caller}: {answer.json()} != {expected}"
            TALLY["vehicle lists"] += 1

    def stream_model(self, oracle: Oracle, order_id: int) -> dict[int, int] | None:
        """What the rule, from the chain's views, lets order `order_id` stream: each vehicle's
        window start (unix ms); None when the order-level rule refuses it."""
        ordered, buyer, _, quantity, _, starts, ends, _ = oracle.order(order_id)
        stream = self.fx.products["stream"]
        operator, _, active, terms = oracle.product(stream)
        permissions = terms[6]
        if ordered != stream:
            b_operator, _, b_active, b_terms = oracle.product(ordered)
            if not b_active or not oracle.operator_active(b_operator):
                return None
            permissions &= b_terms[6]
        if (
            not starts <= oracle.now < ends
            or not oracle.buyer_active(buyer)
            or not active
            or not oracle.operator_active(operator)
            or not permissions & LIVE
        ):
            return None
        members = [v for v in sorted(self.vehicles) if oracle.member(ordered, v)][:quantity]
        return {v: max(self.tenure[v][1], self.joined[(ordered, v)]) * 1000 for v in members}

    def shown(self, vehicle: int, since_ms: int) -> dict[tuple[str, float, int], bool]:
        """Every observation a frame of `vehicle` may carry from `since_ms`, as the current
        tenure's zones show it (name, value, ms), each marked True when it is the vehicle's
        newest of its name (what a frame carries once every push arrived)."""
        live = [z for tenure, z in self.zones.get(vehicle, []) if tenure == self.tenure[vehicle][0]]
        newest: dict[str, int] = {}
        for name, _, at, _ in self.stored[vehicle]:
            newest[name] = max(newest.get(name, at), at)
        points: dict[int, dict[str, float]] = {}
        for name, value, at, _ in self.stored[vehicle]:
            points.setdefault(at, {})[name] = value
        allowed = {}
        for name, value, at, tenure in self.stored[vehicle]:
            if at < since_ms:
                continue
            assert tenure == self.tenure[vehicle][0], "the model's window let a previous tenure in"
            if name in (LAT, LON):
                point = points[at]
                zone = next((z for z in live if z.contains(point[LAT], point[LON])), None)
                if zone is not None:
                    coarse = zones.cell_centre(zone.latitude if name == LAT else zone.longitude)
                    allowed[(name, coarse, at)] = at == newest[name]
                    continue
            allowed[(name, value, at)] = at == newest[name]
        return allowed

    def check_streams(self, oracle: Oracle) -> set[int]:
        """Every stream order's stream (opened when the rule allows it), ticked until its
        frames are what the model says (the feed's pushes may lag; never what it forbids);
        the vehicles they carry."""
        stream_kinds = {self.fx.products["stream"], self.fx.products["bundle"]}
        models = {}
        for order_id in self.orders:
            if oracle.order(order_id)[0] in stream_kinds:
                models[order_id] = self.stream_model(oracle, order_id)
        carried = set().union(*(m for m in models.values() if m))
        self._publish_foreign(oracle, carried)
        for order_id, model in models.items():
            self.check_stream(order_id, model)
        return carried

    def _publish_foreign(self, oracle: Oracle, carried: set[int]) -> None:
        """Values pushed on the feed for vehicles no stream may carry (and one that does not
        exist), as a store write of them would: no frame may ever show them."""
        uncarried = [v for v in self.vehicles if v not in carried] + [10**6]
        at = oracle.now * 1000 + 999
        batch = [(v, [SignalValue(SPEED, FOREIGN, None, at, "oem:1")]) for v in uncarried]
        feed.publish(FEED_URL, feed.encode(batch))
        TALLY["foreign pushes"] += len(batch)

    def _open(self, order_id: int, model: dict[int, int] | None) -> Stream | None:
        buyer_key = next(
            k for k in self.consumers if Account.from_key(k).address.lower() == self._buyer(order_id)
        )
        buyer = Account.from_key(buyer_key).address
        with self.state.database.session(read_only=True) as session:
            decision = may_use_order(self.state.facts(session), buyer, order_id, Purpose.STREAM)
        if model is None:
            assert not decision, f"stream order {order_id} opened though the rule refuses it"
            return None
        assert decision, f"stream order {order_id} refused ({decision.reason}), the model allows it"
        request = StreamRequest(order_id, buyer, None, None)
        chosen = plan(request, decision, self.settings.stream_min_refresh)
        assert isinstance(chosen, StreamPlan), chosen
        session_id = self.tokens[buyer_key].split(".")[1]
        TALLY["streams opened"] += 1
        return Stream(OpenStream(request, chosen, session_id), buyer)

    def _buyer(self, order_id: int) -> str:
        return self.fx.world.market.functions.order(order_id).call()[1].lower()

    def check_stream(self, order_id: int, model: dict[int, int] | None) -> None:
        stream = self.streams.get(order_id) or self._open(order_id, model)
        if stream is None:
            return
        self.streams[order_id] = stream
        deadline = time.monotonic() + PUSH_WAIT
        while True:
            outcome = tick(self.state, stream.open)
            if outcome.ended is not None:
                assert model is None, f"stream {order_id} ended ({outcome.ended}), the model allows it"
                TALLY[f"streams ended: {outcome.ended[0]}"] += 1
                stream.open.close(self.state.stream_hub)
                del self.streams[order_id]
                return
            assert model is not None, f"stream {order_id} went on, the rule refuses it"
            frames = self._frames(outcome.events, order_id)
            complete = True
            for vehicle, signals in frames.items():
                assert vehicle in model, f"stream {order_id} carried vehicle {vehicle}, not allowed {model}"
                allowed = self.shown(vehicle, model[vehicle])
                for s in signals:
                    assert s in allowed, (
                        f"stream {order_id} showed {s} of vehicle {vehicle}: not among {sorted(allowed)}"
                    )
                complete &= sorted(signals) == sorted(s for s, newest in allowed.items() if newest)
            for vehicle, since in model.items():
                if vehicle not in frames:
                    complete &= not any(self.shown(vehicle, since).values())
            if complete:
                TALLY["stream ticks checked"] += 1
                TALLY["stream frames"] += len(frames)
                return
            assert time.monotonic() < deadline, f"stream {order_id}: {frames}, the model {model}"
            time.sleep(0.05)

    @staticmethod
    def _frames(events: bytes, order_id: int) -> dict[int, list[tuple[str, float, int]]]:
        frames: dict[int, list[tuple[str, float, int]]] = {}
        for line in events.decode().splitlines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            assert event["order_id"] == order_id
            assert event["vehicle_id"] not in frames, f"vehicle {event['vehicle_id']} twice in one tick"
            frames[event["vehicle_id"]] = [
                (s["name"], s["value"], _ms(s["timestamp"])) for s in event["signals"]
            ]
        return frames


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


@pytest.mark.timeout(1800)
def test_push_paths_privacy_property(fixture: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The push paths under the same histories (see `PushPathsMachine`), the feed on the real
    Redis at 127.0.0.1:6379, on a channel of this run's own (a test beside it publishes none)."""
    if not _redis_answers(FEED_URL):
        pytest.skip(f"no Redis answers at {FEED_URL}")
    monkeypatch.setattr(feed, "CHANNEL", f"{feed.CHANNEL}:privacy-{uuid.uuid4().hex}")
    PushPathsMachine.fx = replace(
        fixture, settings=fixture.settings.model_copy(update={"signals_feed_url": FEED_URL})
    )
    run(PushPathsMachine, PUSH_EXAMPLES)
    assert TALLY["stream ticks checked"] > 0 and TALLY["device payloads stored"] > 0


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False
