"""From a metered call to a member's payout: the gateway counts the calls, settlement pays each
period's vested release to the vehicles that served it and proposes one cumulative root,
accepted after its delay; GET /v1/members/{address}/claims answers the member's leaf and ONE
`Marketplace.claim(account, cumulative, proof)` pays everything owed; GET
/v1/members/{address}/earnings says per product and period what made up the leaf."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.anvil import ANVIL_KEYS
from tests.support.databases import get_engine, session_scope
from tests.support.history import ACCOUNTS, CONSUMER, OPERATOR, OWNERS, History, terms
from tests.support.market import settings_for
from tests.workers.gateway.conftest import sign_in
from workers.chain import connect
from workers.config import use_settings
from workers.gateway.app import create_app
from workers.indexer.sync import Indexer
from workers.merkle import verify_claim
from workers.protocol import DIMO, UINT256_MAX, ZERO_ADDRESS, Kind, Use
from workers.settlement import NotYetError, Settlement
from workers.signals.store import SignalValue, store_signals

CONSUMER_KEY = ANVIL_KEYS[8]  # tests.support.history.CONSUMER
PERIOD = 3_600
ROOT_DELAY = 3_600


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_calls_answered_by_the_gateway_are_paid_to_the_members_in_one_claim(deployment, db_url) -> None:
    anvil, manifest, path = deployment
    settings = settings_for(anvil.url, db_url, path, access_cache_ttl=0.0, epoch_seconds=PERIOD)
    use_settings(settings)
    history = History(anvil.w3, manifest)
    history.token_and_treasury()
    history.identity()
    history.staking()
    receipt = history.tx("DataProducts", "createProduct", terms(Kind.API, DIMO // 100), sender=OPERATOR)
    api = history.event_arg(receipt, "DataProducts", "ProductCreated", "productId")
    v1, _v2, _v3, _v4, v5 = history.vehicles
    history.tx("DataProducts", "join", api, v1, sender=OWNERS[0])
    history.tx("DataProducts", "join", api, v5, sender=OWNERS[1])
    history.tx("DimoToken", "approve", history.manifest.address("Marketplace"), UINT256_MAX, sender=CONSUMER)
    order = history.buy("buyCredits", api, 100, ZERO_ADDRESS, Use.INSURANCE, units=100)
    history.tx("Marketplace", "setRootDelay", ROOT_DELAY)
    engine = get_engine(db_url)
    Indexer(connect(settings), engine, settings).sync()
    # both cars report after joining (a call that returns nothing is not paid for)
    after_join = (history.now() + 1) * 1000
    with session_scope(db_url) as session:
        for vehicle in (v1, v5):
            store_signals(session, vehicle, [SignalValue("Vehicle.Speed", 42.0, "km/h", after_join, "oem:1")])

    with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
        token = sign_in(client, CONSUMER_KEY)
        for vehicle in (v1, v1, v1, v5):
            answer = client.get(
                f"/v1/products/{api}/vehicles/{vehicle}/signals/latest",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
        nothing = client.get(f"/v1/members/{OWNERS[0]}/claims").json()
        assert (nothing["claimable"], nothing["root"], nothing["proof"]) == ("0", None, [])

        # two periods end; settlement pays what the order released in them, proposes a root
        history.advance(2 * PERIOD)
        Indexer(connect(settings), engine, settings).sync()
        service = Settlement(connect(settings), engine, settings)
        closed = service.close_periods(api)
        assert closed.periods >= 2 and closed.paid > 0
        with pytest.raises(NotYetError, match="claimable at"):
            service.settle()  # proposed: pending for the root delay
        Indexer(connect(settings), engine, settings).sync()
        assert client.get(f"/v1/members/{OWNERS[0]}/claims").json()["root"] is None  # still pending
        history.advance(ROOT_DELAY)
        accepted = service.settle()
        assert accepted is not None and accepted.status == "accepted"
        Indexer(connect(settings), engine, settings).sync()

        market = history.contract("Marketplace").functions
        leaves = {owner: client.get(f"/v1/members/{owner}/claims").json() for owner in OWNERS[:2]}
        first, second = leaves[OWNERS[0]], leaves[OWNERS[1]]
        assert first["root"] == "0x" + market.root().call().hex()
        assert verify_claim(first["root"], (first["account"], int(first["cumulative"])), first["proof"])
        # three of the four calls answered in the served period were v1's
        assert int(first["cumulative"]) > int(second["cumulative"]) > 0
        assert int(first["cumulative"]) + int(second["cumulative"]) <= market.takenMemberAmount(api).call()
        assert market.takenMemberAmount(api).call() <= market.vestedMemberAmount(api).call()
        assert first["claimed"] == "0" and first["claimable"] == first["cumulative"]

        # the earnings history replays the share rule per closed period: it adds up to the leaf
        for owner, leaf in leaves.items():
            history_of = client.get(f"/v1/members/{owner}/earnings").json()
            assert history_of["period_seconds"] == PERIOD
            rows = history_of["earnings"]
            assert {r["product_id"] for r in rows} == {api} and len(rows) == closed.periods
            assert [r["starts_at"] for r in rows] == [r["period"] * PERIOD for r in rows]
            assert sum(int(r["amount"]) for r in rows) == int(leaf["cumulative"])
        assert client.get(f"/v1/members/{ACCOUNTS[9]}/earnings").json()["earnings"] == []
        last_only = client.get(f"/v1/members/{OWNERS[0]}/earnings", params={"periods": 1}).json()["earnings"]
        assert len(last_only) == 1 and last_only[0]["period"] == max(r["period"] for r in rows)

        token_contract = history.contract("DimoToken").functions
        before = token_contract.balanceOf(OWNERS[0]).call()
        history.tx(
            "Marketplace", "claim", OWNERS[0], int(first["cumulative"]), first["proof"], sender=ACCOUNTS[9]
        )  # anyone may send it: the money goes to the member
        assert token_contract.balanceOf(OWNERS[0]).call() - before == int(first["cumulative"])
        Indexer(connect(settings), engine, settings).sync()
        after = client.get(f"/v1/members/{OWNERS[0]}/claims").json()
        assert (after["claimed"], after["claimable"]) == (first["cumulative"], "0")
        assert client.get("/v1/members/nobody/claims").json()["reason"] == "bad_request"
    assert order > 0
