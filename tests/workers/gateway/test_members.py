"""From a metered call to a member's payout: the gateway's usage rows are what settlement
pays; GET /v1/members/{address}/claims answers what `Marketplace.claim` takes, and the claim
goes through on chain."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import get_engine, session_scope
from tests.support.history import ACCOUNTS, OWNERS, History
from tests.support.market import market_with_pools, settings_for
from tests.workers.gateway.conftest import sign_in
from workers.chain import connect
from workers.config import use_settings
from workers.gateway.app import create_app
from workers.indexer.sync import Indexer
from workers.settlement import Settlement
from workers.signals.store import SignalValue, store_signals

CONSUMER_KEY = ANVIL_KEYS[8]  # tests.support.history.CONSUMER: holds 100 Api credits


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_calls_answered_by_the_gateway_are_paid_to_the_members(deployment, db_url) -> None:
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path, access_cache_ttl=0.0)
    use_settings(settings)
    market = market_with_pools(History(anvil.w3, manifest), settings)
    v1, _v2, _v3, _v4, v5 = market.history.vehicles
    market.history.tx("DataProducts", "join", market.api, v1, sender=OWNERS[0])
    market.history.tx("DataProducts", "join", market.api, v5, sender=OWNERS[1])
    Indexer(connect(settings), get_engine(db_url), settings).sync()
    epoch = market.epoch()
    # both cars report after joining (a call that returns nothing is not paid for)
    after_join = (anvil.w3.eth.get_block("latest")["timestamp"] + 1) * 1000
    with session_scope(db_url) as session:
        for vehicle in (v1, v5):
            store_signals(session, vehicle, [SignalValue("Vehicle.Speed", 42.0, "km/h", after_join, "oem:1")])

    with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
        token = sign_in(client, CONSUMER_KEY)
        for vehicle in (v1, v1, v1, v5):
            answer = client.get(
                f"/v1/products/{market.api}/vehicles/{vehicle}/signals/latest",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
        assert client.get(f"/v1/members/{OWNERS[0]}/claims").json() == {"address": OWNERS[0], "claims": []}

        pool = market.history.contract("Marketplace").functions.memberPool(market.api).call()
        market.end_epoch()
        service = Settlement(connect(settings), get_engine(db_url), settings)
        service.close_epoch(market.api, epoch)
        assert service.submit(market.api, epoch).status == "settled"
        Indexer(connect(settings), get_engine(db_url), settings).sync()

        body = client.get(f"/v1/members/{OWNERS[0]}/claims").json()
        (claim,) = body["claims"]
        assert (claim["product_id"], claim["epoch"]) == (market.api, epoch)
        assert int(claim["amount"]) == pool * 3 // 4  # three of the four calls answered were v1's
        token_contract = market.history.contract("DimoToken").functions
        before = token_contract.balanceOf(OWNERS[0]).call()
        market.history.tx(
            "Marketplace", "claim", market.api, epoch, claim["index"], OWNERS[0], int(claim["amount"]),
            claim["proof"], sender=ACCOUNTS[9],
        )  # fmt: skip
        assert token_contract.balanceOf(OWNERS[0]).call() - before == int(claim["amount"])
        Indexer(connect(settings), get_engine(db_url), settings).sync()
        assert client.get(f"/v1/members/{OWNERS[0]}/claims").json()["claims"] == []
        assert client.get("/v1/members/nobody/claims").json()["reason"] == "bad_request"
