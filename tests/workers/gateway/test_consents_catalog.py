"""The catalog and a vehicle's consents, as the indexer last confirmed them from a real
anvil: products with terms and bundle components, open demand, and for the owner only the
live keys and memberships (expired keys, old term versions and pre-transfer ones left out)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_utils import keccak
from fastapi.testclient import TestClient

from devkit.deployment import ANVIL_DEPLOYER_KEY, deploy_all
from devkit.market_world import MarketWorld
from tests.support.anvil import AnvilNode
from tests.support.databases import get_engine
from tests.workers.gateway.conftest import gateway_settings, sign_in
from workers.chain import connect
from workers.gateway.app import create_app
from workers.indexer.sync import Indexer
from workers.protocol import DEFAULT_CREDIT_VALIDITY, DIMO, MONTH_SECONDS, Kind
from workers.protocol.permissions import DRIVE, LOCK, MANAGE_KEYS, TELEMETRY


@dataclass
class Env:
    node: AnvilNode
    world: MarketWorld
    client: TestClient
    indexer: Indexer

    def sync(self) -> None:
        self.indexer.sync()

    def consents(self, key: str, vehicle: int) -> dict:
        token = sign_in(self.client, key)
        return self.client.get(
            f"/v1/vehicles/{vehicle}/consents", headers={"Authorization": f"Bearer {token}"}
        ).json()


@pytest.fixture
def env(tmp_path, sqlite_db: str) -> Iterator[Env]:
    node = AnvilNode(log_dir=tmp_path)
    try:
        manifest, manifest_file = deploy_all(node.w3, ANVIL_DEPLOYER_KEY, directory=tmp_path / "deployments")
        world = MarketWorld(node.w3, manifest).setup()
        settings = gateway_settings(
            sqlite_db, rpc_url=node.url, deployment_file=manifest_file, confirmations=0, access_cache_ttl=0
        )
        indexer = Indexer(connect(settings), get_engine(sqlite_db), settings)
        with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
            yield Env(node, world, client, indexer)
    finally:
        node.stop()


def test_the_catalog_lists_products_terms_bundles_and_open_demand(env: Env) -> None:
    world = env.world
    stream = world.create_product(Kind.STREAM, refresh=30, tag="cat-stream")
    api = world.create_product(Kind.API, permissions=TELEMETRY, tag="cat-api")
    dataset = world.create_product(Kind.DATASET, min_cohort=5, tag="cat-ds")
    bundle = world.create_bundle([stream, api], [0, 250], tag="cat-bundle")
    world.set_active(dataset, False)
    consumer = world.consumer_keys[0]
    world.send(consumer, world.products, "signalDemand", keccak(text="soh"), "ipfs://demand/soh", 5 * DIMO)
    world.send(consumer, world.products, "signalDemand", keccak(text="trips"), "ipfs://demand/trips", DIMO)
    world.send(consumer, world.products, "withdrawDemand", 2)
    env.sync()

    listed = env.client.get("/v1/products").json()
    assert [p["product_id"] for p in listed] == [stream, api, dataset, bundle]
    by_id = {p["product_id"]: p for p in listed}
    assert by_id[stream]["kind"] == "Stream" and by_id[stream]["terms"]["refresh_seconds"] == 30
    assert by_id[api]["terms"]["required_permissions"] == TELEMETRY
    # credits expire: the Api terms say how long they stay valid; no other kind has a validity
    assert by_id[api]["terms"]["validity_seconds"] == DEFAULT_CREDIT_VALIDITY
    assert by_id[stream]["terms"]["validity_seconds"] == 0
    assert by_id[api]["operator"] == world.operator.lower()
    assert not by_id[dataset]["active"] and by_id[dataset]["terms"]["min_cohort"] == 5
    assert by_id[bundle]["components"] == [
        {"product_id": stream, "kind": "Stream", "monthly_quantity": 0},
        {"product_id": api, "kind": "Api", "monthly_quantity": 250},
    ]
    assert [p["product_id"] for p in env.client.get("/v1/products?active=true&kind=Api").json()] == [api]
    assert env.client.get(f"/v1/products/{bundle}").json() == by_id[bundle]
    assert env.client.get("/v1/products/999").json()["reason"] == "not_found"
    demand = env.client.get("/v1/demand").json()
    assert [(d["signal_id"], d["uri"], d["budget"]) for d in demand] == [
        (1, "ipfs://demand/soh", str(5 * DIMO))
    ]


def test_consents_are_the_owner_s_live_keys_and_memberships(env: Env) -> None:
    world = env.world
    owner_key, next_owner_key = world.owner_keys[0], world.owner_keys[1]
    api = world.create_product(Kind.API, tag="consent-api")
    stream = world.create_product(Kind.STREAM, tag="consent-stream")
    vehicle = world.mint(owner_key)
    driver, fleet = (
        Account.from_key(world.consumer_keys[0]).address,
        Account.from_key(world.consumer_keys[1]).address,
    )
    now = env.node.w3.eth.get_block("latest")["timestamp"]
    world.grant(owner_key, vehicle, driver, LOCK | DRIVE)
    world.grant(owner_key, vehicle, fleet, LOCK, now + MONTH_SECONDS)
    world.join(owner_key, api, vehicle)
    world.join(owner_key, stream, vehicle)
    env.sync()

    body = env.consents(owner_key, vehicle)
    assert body["vehicle_id"] == vehicle and body["owner"] == world.address(owner_key).lower()
    assert sorted((k["grantee"], k["permissions"]) for k in body["keys"]) == sorted(
        [(driver.lower(), LOCK | DRIVE), (fleet.lower(), LOCK)]
    )
    assert body["products"] == [{"product_id": api, "version": 1}, {"product_id": stream, "version": 1}]
    assert env.consents(next_owner_key, vehicle)["reason"] == "not_owner"

    env.node.increase_time(MONTH_SECONDS + 1)  # the fleet key expires
    world.update_terms(api, Kind.API, tag="consent-api-v2")  # members must consent again
    env.sync()
    body = env.consents(owner_key, vehicle)
    assert [k["grantee"] for k in body["keys"]] == [driver.lower()]
    assert body["products"] == [{"product_id": stream, "version": 1}]

    world.transfer(owner_key, vehicle, world.address(next_owner_key))  # the new owner starts clean
    env.sync()
    assert env.consents(owner_key, vehicle)["reason"] == "not_owner"
    assert env.consents(next_owner_key, vehicle) | {"owner": None} == {
        "vehicle_id": vehicle,
        "owner": None,
        "keys": [],
        "products": [],
    }


def test_keys_a_revoked_manager_granted_are_gone_from_consents_and_refused(env: Env) -> None:
    """A key manager's keys count while it holds MANAGE_KEYS: once the owner revokes it
    (ManagerKeysVoided, no KeyRevoked per key), the owner's view drops them and the gateway
    refuses their commands; the owner's own keys stay."""
    world = env.world
    owner_key, manager_key, app_key = world.owner_keys[0], world.consumer_keys[0], world.consumer_keys[1]
    manager, app = Account.from_key(manager_key).address, Account.from_key(app_key).address
    owners_pick = Account.from_key(world.owner_keys[1]).address
    vehicle = world.mint(owner_key)
    world.grant(owner_key, vehicle, manager, MANAGE_KEYS | LOCK)
    world.grant(manager_key, vehicle, app, LOCK)
    world.grant(owner_key, vehicle, owners_pick, DRIVE)
    env.sync()
    granted = {k["grantee"] for k in env.consents(owner_key, vehicle)["keys"]}
    assert granted == {manager.lower(), app.lower(), owners_pick.lower()}

    world.revoke(owner_key, vehicle, manager)
    env.sync()
    assert [k["grantee"] for k in env.consents(owner_key, vehicle)["keys"]] == [owners_pick.lower()]
    token = sign_in(env.client, app_key)
    refused = env.client.post(
        f"/v1/vehicles/{vehicle}/commands/lock", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403 and refused.json()["reason"] == "no_permission"

    # Re-appointed, the manager grants afresh; the voided key stays void.
    world.grant(owner_key, vehicle, manager, MANAGE_KEYS | LOCK)
    env.sync()
    assert app.lower() not in {k["grantee"] for k in env.consents(owner_key, vehicle)["keys"]}
    world.grant(manager_key, vehicle, app, LOCK)
    env.sync()
    assert app.lower() in {k["grantee"] for k in env.consents(owner_key, vehicle)["keys"]}
