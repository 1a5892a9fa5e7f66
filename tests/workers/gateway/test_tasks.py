"""The gateway's Celery tasks on a real worker, a real Redis and a real anvil:
`datasets.build` computes a queued dataset; `access.sweep` expires ended orders on chain
(Marketplace.expireOrder, which re-syncs the buyer's Staking usage) and their credits.

The indexer follows the chain into the shared database (0 confirmations); the chain, the
worker, the broker and the database are the real ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery
from eth_utils import keccak
from fastapi.testclient import TestClient
from sqlalchemy import select

from devkit.databases import migrated, sqlite_url
from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from devkit.market_world import MarketWorld
from tests.support.anvil import ANVIL_KEYS, AnvilNode
from tests.support.celery_worker import CeleryWorker, RedisServer
from tests.support.databases import get_engine, session_scope
from tests.workers.gateway.conftest import gateway_settings, sign_in
from tests.workers.gateway.projections import World
from workers.app import create_app as create_celery
from workers.chain import connect
from workers.config import Settings
from workers.db.gateway import ApiCredit, DatasetJob, OrderExpiry
from workers.gateway.app import create_app
from workers.indexer.sync import Indexer
from workers.protocol import MONTH_SECONDS, SETTLER_ROLE, Kind

SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
SWEEPER_KEY = ANVIL_KEYS[9]


@dataclass
class Stack:
    node: AnvilNode
    world: MarketWorld
    db_url: str
    settings: Settings
    celery: Celery


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("tasks")
    node = AnvilNode(log_dir=directory)
    manifest, manifest_file = deploy_all(node.w3, ANVIL_DEPLOYER_KEY, directory=directory / "deployments")
    world = MarketWorld(node.w3, manifest).setup()
    # the workers' key delivers datasets (SETTLER_ROLE); expiring orders needs no role
    world.send(world.dao_key, world.market, "grantRole", SETTLER_ROLE, world.address(SWEEPER_KEY))
    redis_server = RedisServer(directory)
    with migrated(sqlite_url(directory)) as db_url:
        env = {
            "DATABASE_URL": db_url,
            "BROKER_URL": redis_server.url,
            "RESULT_BACKEND": redis_server.url,
            "RPC_URL": node.url,
            "DEPLOYMENT_FILE": str(manifest_file),
            "SETTLER_KEY": SWEEPER_KEY,
        }
        worker = CeleryWorker(env, "datasets,access", directory)
        settings = gateway_settings(
            db_url,
            confirmations=0,
            rpc_url=node.url,
            deployment_file=Path(manifest_file),
            broker_url=redis_server.url,
            result_backend=redis_server.url,
            settler_key=SWEEPER_KEY,
            access_cache_ttl=0,
        )
        celery = create_celery(settings)
        try:
            yield Stack(node, world, db_url, settings, celery)
        finally:
            celery.close()
            worker.stop()
            redis_server.stop()
            node.stop()


def index(stack: Stack) -> None:
    """The indexer applies everything up to the head."""
    Indexer(connect(stack.settings), get_engine(stack.db_url), stack.settings).sync()


def test_a_dataset_is_built_by_the_worker(stack: Stack) -> None:
    world, consumer = stack.world, stack.world.consumer_keys[0]
    product = world.create_product(Kind.DATASET, min_cohort=2, tag="tasks-dataset")
    owner = world.owner_keys[0]
    vehicles = [world.mint(owner) for _ in range(3)]
    for v in vehicles:
        world.join(owner, product, v)
    order = world.purchase_dataset(consumer, product)
    index(stack)
    with session_scope(stack.db_url) as session:
        for i, v in enumerate(vehicles):
            World(session).signals(v, {SOH: 90.0 + i}, int(time.time() * 1000))
    with TestClient(create_app(stack.settings), base_url="http://localhost:8000") as client:
        token = sign_in(client, consumer)
        queued = client.post(
            f"/v1/orders/{order}/dataset", json={"metric": SOH}, headers={"Authorization": f"Bearer {token}"}
        )
        assert queued.status_code == 202, queued.text
        job = queued.json()["job_id"]
        deadline = time.monotonic() + 60
        while True:
            body = client.get(f"/v1/datasets/{job}", headers={"Authorization": f"Bearer {token}"}).json()
            if body["status"] in ("done", "refused", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert body["status"] == "done", body
    [row] = body["result"]["rows"]  # noisy count and mean (differential privacy): no exact value
    assert row[0] == "all" and len(row) == 4 and 0 <= row[2] <= 100
    assert body["epsilon"] == stack.settings.dataset_epsilon_per_query
    # its first result delivers the order on chain (datasets.deliver): the member share vests
    with session_scope(stack.db_url, read_only=True) as session:
        released = session.get(DatasetJob, job).result
    deadline = time.monotonic() + 60
    while world.market.functions.orderVesting(order).call()[1] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    share, starts, ends, _refunded, _version = world.market.functions.orderVesting(order).call()
    assert share > 0 and starts == ends != 0, "the worker did not deliver the dataset order"
    (event,) = world.market.events.DatasetDelivered().get_logs(
        from_block=0, argument_filters={"orderId": order}
    )
    assert "0x" + event["args"]["resultHash"].hex() == "0x" + keccak(text=released).hex()


def test_the_sweep_expires_ended_orders_on_chain_and_their_credits(stack: Stack) -> None:
    world, consumer = stack.world, stack.world.consumer_keys[1]
    buyer = world.address(consumer)
    stream = world.create_product(Kind.STREAM, tag="tasks-stream")
    api = world.create_product(Kind.API, tag="tasks-api")
    bundle = world.create_bundle([stream, api], [0, 50], tag="tasks-bundle")
    stream_order = world.subscribe(consumer, stream, 2)
    bundle_order = world.subscribe(consumer, bundle, 1)
    credits_order = world.buy_credits(consumer, api, 10)  # valid for the terms' 30 days
    units, _ = world.market.functions.usageOf(buyer).call()
    assert units == 2 + 1 + 1  # credits count ceil(calls / 1,000) units too
    index(stack)
    with session_scope(stack.db_url) as session:
        _, _, _, _, _, _, bundle_ends, _ = world.market.functions.order(bundle_order).call()
        session.add(
            ApiCredit(
                order_id=bundle_order,
                product_id=api,
                buyer=buyer.lower(),
                total=50,
                remaining=7,
                expires_at=bundle_ends,
            )
        )
    stack.node.increase_time(MONTH_SECONDS + 60)

    report = stack.celery.send_task("access.sweep").get(timeout=120)
    # every kind ends now: the dataset order of the test above (30 days) is expired as well
    assert {stream_order, bundle_order, credits_order} <= set(report["orders_expired"])
    assert report["credits_expired"] == 1
    for order in (stream_order, bundle_order, credits_order):
        assert not world.market.functions.inForce(order).call()
    assert world.market.functions.usageOf(buyer).call()[0] == 0  # the lockup curve follows
    with session_scope(stack.db_url, read_only=True) as session:
        credit = session.get(ApiCredit, (bundle_order, api))
        assert credit is not None and credit.expired and credit.remaining == 0
        statuses = {int(r.order_id): r.status for r in session.scalars(select(OrderExpiry))}
    # credits expire: an API order ends `validitySeconds` after its purchase like any other
    assert statuses[stream_order] == statuses[bundle_order] == statuses[credits_order] == "expired"

    again = stack.celery.send_task("access.sweep").get(timeout=120)
    assert again["orders_expired"] == [] and again["credits_expired"] == 0
