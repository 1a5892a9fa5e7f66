"""The market story from Python, through ape's anvil and the project's deployment: an operator
stakes and publishes a stream, an API, a dataset and a bundle of the three; three owners join
(one by an EIP-712 `Join` signature built in Python and relayed); a consumer buys each product
through a broker and the bundle through the DAO's steward, each purchase bound to the quoted
terms version and a maximum payment; every party's balance is checked to the wei; the member
shares vest over the orders' terms (the dataset's at delivery); the settler proposes one
cumulative root over every product, anyone accepts it after the delay, and each member collects
all its earnings with one claim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from tests.support.console_docs import open_console
from workers import eip712
from workers.protocol import (
    DEFAULT_PROTOCOL_FEE_BPS,
    DIMO,
    MAX_BPS,
    MONTH_SECONDS,
    UINT256_MAX,
    Kind,
    Tier,
    Use,
    uses_mask,
)
from workers.protocol.terms import FIELDS as TERMS_FIELDS
from workers.protocol.terms import terms as base_terms

MEMBERS_BPS, OPERATOR_BPS, BROKER_BPS = 7_000, 2_000, 500
SPEC = keccak(text="battery state of health by region")
#: How long the API product's credits stay valid (Terms.validitySeconds).
CREDIT_VALIDITY = 90 * 86_400
DAY = 86_400


@dataclass(frozen=True)
class Env:
    console: dict[str, Any]
    token: Any
    vehicles: Any
    staking: Any
    products: Any
    market: Any
    treasury: str
    chain_id: int


@dataclass(frozen=True)
class Cast:
    dao: Any
    operator: Any
    broker: Any
    steward: Any
    consumer: Any
    relayer: Any
    owners: list[Any]  # ape accounts that send their own join
    signer: LocalAccount  # an owner with a key and no ETH: joins by signature


@dataclass(frozen=True)
class Catalog:
    stream: int
    api: int
    dataset: int
    bundle: int


def terms(kind: int, price: int, **changes: Any) -> tuple:
    """IDataProducts.Terms as the ABI tuple: 70/20/5 and the 5% fee, insurance or research,
    telemetry and location."""
    fields = {
        "membersBps": MEMBERS_BPS,
        "operatorBps": OPERATOR_BPS,
        "brokerBps": BROKER_BPS,
        "permittedUses": uses_mask(Use.INSURANCE, Use.RESEARCH),
        "minCohort": 3 if kind in (Kind.DATASET, Kind.BUNDLE) else 0,
        "termsURI": f"ipfs://terms/{kind}",
    }
    validity = changes.pop("validitySeconds", CREDIT_VALIDITY if kind == Kind.API else 0)
    if "validitySeconds" in TERMS_FIELDS:
        return base_terms(kind, price, **{**fields, **changes, "validitySeconds": validity})
    # Terms.validitySeconds is the struct's last field (SPEC15 §1).
    return (*base_terms(kind, price, **{**fields, **changes}), validity)


def cumulative_leaf(account: str, cumulative: int) -> bytes:
    """The Marketplace's StandardMerkleTree leaf keccak256(keccak256(abi.encode(account, cumulative)))."""
    return keccak(keccak(encode(["address", "uint256"], [account, cumulative])))


def sorted_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


def tree(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """A sorted-pair Merkle tree (odd nodes carried up): its root and each leaf's proof, computed
    here independently of the workers' tree builder."""
    proofs: list[list[bytes]] = [[] for _ in leaves]
    level, members = list(leaves), [[i] for i in range(len(leaves))]
    while len(level) > 1:
        nxt, nxt_members = [], []
        for i in range(0, len(level), 2):
            if i + 1 == len(level):
                nxt.append(level[i])
                nxt_members.append(members[i])
                continue
            for leaf in members[i]:
                proofs[leaf].append(level[i + 1])
            for leaf in members[i + 1]:
                proofs[leaf].append(level[i])
            nxt.append(sorted_pair(level[i], level[i + 1]))
            nxt_members.append(members[i] + members[i + 1])
        level, members = nxt, nxt_members
    return level[0], proofs


def split(paid: int, brokered: bool) -> dict[str, int]:
    """DESIGN.md §3.6, computed here independently: each share rounds down, the members get the
    rest; without a broker (or through a steward) the broker share goes to the Treasury."""
    operator = paid * OPERATOR_BPS // MAX_BPS
    broker = paid * BROKER_BPS // MAX_BPS
    fee = paid * DEFAULT_PROTOCOL_FEE_BPS // MAX_BPS
    return {
        "members": paid - operator - broker - fee,
        "operator": operator,
        "broker": broker if brokered else 0,
        "treasury": fee + (0 if brokered else broker),
    }


@pytest.fixture(scope="module")
def env(manifest, chain, project) -> Env:
    m, path = manifest
    return Env(
        console=open_console(chain, path),
        token=project.DimoToken.at(m.address("DimoToken")),
        vehicles=project.VehicleId.at(m.address("VehicleId")),
        staking=project.Staking.at(m.address("Staking")),
        products=project.DataProducts.at(m.address("DataProducts")),
        market=project.Marketplace.at(m.address("Marketplace")),
        treasury=m.address("Treasury"),
        chain_id=chain.chain_id,
    )


@pytest.fixture(scope="module")
def cast(accounts, env) -> Cast:
    """Curves set and the operator, broker, steward and consumer whitelisted and staked by the DAO."""
    dao = accounts[0]
    operator, broker, steward, consumer = accounts[1], accounts[2], accounts[3], accounts[4]
    relayer = accounts[8]
    console = env.console
    console["set_curve"]("Operator", "1000 DIMO", "0 DIMO")
    console["set_curve"]("Broker", "500 DIMO", "10 DIMO")
    console["set_curve"]("Consumer", "100 DIMO", "10 DIMO")
    for account, role, stake in (
        (operator, "Operator", 1_000),
        (broker, "Broker", 1_000),
        (steward, "Broker", 1_000),
        (consumer, "Consumer", 1_000),
    ):
        console["whitelist"](account.address, role)
        env.token.transfer(account, (stake + 20_000) * DIMO, sender=dao)
        env.token.approve(env.staking, stake * DIMO, sender=account)
        env.staking.stake(stake * DIMO, sender=account)
    env.token.approve(env.market, UINT256_MAX, sender=consumer)
    env.market.setSteward(steward, True, sender=dao)
    signer = Account.from_key(keccak(b"owner who signs"))
    return Cast(dao, operator, broker, steward, consumer, relayer, [accounts[5], accounts[6]], signer)


@pytest.fixture(scope="module")
def catalog(env, cast) -> Catalog:
    """The operator's stream, API, dataset and a bundle of the three."""
    products, op = env.products, cast.operator
    products.createProduct(terms(Kind.STREAM, 2 * DIMO), sender=op)
    products.createProduct(terms(Kind.API, DIMO // 100), sender=op)
    products.createProduct(terms(Kind.DATASET, 500 * DIMO), sender=op)
    products.createBundle(terms(Kind.BUNDLE, 5 * DIMO), [1, 2, 3], [0, 1_000, 0], sender=op)
    assert products.productCount() == 4
    return Catalog(stream=1, api=2, dataset=3, bundle=4)


def mint(env: Env, cast: Cast, owner: str, n: int) -> int:
    connection = env.vehicles.connectionCount()
    if connection == 0:
        env.vehicles.addConnection("Tesla", cast.dao, sender=cast.dao)
        connection = 1
    env.vehicles.mint(owner, connection, eip712.vin_hash(f"5YJ3E1EA7KF3170{n:02d}"), sender=cast.dao)
    return int(env.vehicles.totalMinted())


def join_signature(
    env: Env, owner: LocalAccount, product: int, vehicle: int, *, version: int, deadline: int
) -> tuple[int, bytes]:
    """The owner's lowest unused `Join` nonce and its signature over `Join` with it."""
    nonce = next(n for n in range(1 << 16) if not env.products.isNonceUsed(owner.address, n))
    doc = eip712.join(
        env.console["products_domain"],
        product_id=product,
        vehicle_id=vehicle,
        generation=env.vehicles.generation(vehicle),
        version=version,
        nonce=nonce,
        deadline=deadline,
    )
    return nonce, eip712.sign(doc, owner.key)


def test_console_has_the_market_one_liners(env):
    names = ("set_protocol_fee", "deactivate_product", "earnings", "products", "market", "products_domain")
    for name in names:
        assert name in env.console, name
    assert env.console["products_domain"]["name"] == "DIMO Data Products"


def test_the_market_story(env, cast, catalog, chain):
    token, products, market = env.token, env.products, env.market

    # Three owners consent: two send `join`, the third signs `Join` and a relayer submits it.
    members = {catalog.stream: [], catalog.bundle: []}
    for n, owner in enumerate(cast.owners):
        vehicle = mint(env, cast, owner.address, n)
        for product, joined in members.items():
            products.join(product, vehicle, sender=owner)
            joined.append((owner.address, vehicle))
    vehicle = mint(env, cast, cast.signer.address, 9)
    deadline = chain.pending_timestamp + 3600
    for product, joined in members.items():
        nonce, signature = join_signature(env, cast.signer, product, vehicle, version=1, deadline=deadline)
        products.joinBySig(product, vehicle, 1, nonce, deadline, signature, sender=cast.relayer)
        joined.append((cast.signer.address, vehicle))
    assert products.nonceBitmap(cast.signer.address, 0) == 0b11
    for product, joined in members.items():
        assert products.memberCount(product) == 3
        assert all(products.isMember(product, v) for _, v in joined)

    # The consumer buys each product through the broker, and the bundle through the steward,
    # each bound to terms version 1 and to the price it was quoted as its maximum payment.
    purchases = [
        ("subscribe", (catalog.stream, 3, 2, cast.broker, Use.INSURANCE), 2 * DIMO * 3 * 2, True),
        ("buyCredits", (catalog.api, 10_000, cast.broker, Use.RESEARCH), DIMO // 100 * 10_000, True),
        ("purchaseDataset", (catalog.dataset, SPEC, cast.broker, Use.RESEARCH), 500 * DIMO, True),
        ("subscribe", (catalog.bundle, 3, 1, cast.steward, Use.INSURANCE), 5 * DIMO * 3, False),
    ]
    before = {
        "consumer": token.balanceOf(cast.consumer),
        "treasury": token.balanceOf(env.treasury),
        "market": token.balanceOf(market),
    }
    expected = {"treasury": 0, "operator": 0, "broker": 0, "paid": 0}
    shares_of: dict[int, int] = {}
    for n, (fn, args, paid, brokered) in enumerate(purchases, start=1):
        with pytest.raises(market.PaymentAboveMax):
            getattr(market, fn)(*args, 1, paid - 1, sender=cast.consumer)
        receipt = getattr(market, fn)(*args, 1, paid, sender=cast.consumer)
        product_id = args[0]
        (order,) = [e for e in receipt.events if e.event_name == "OrderPlaced"]
        assert order.orderId == n and order.paid == paid and order.buyer == cast.consumer.address
        shares = split(paid, brokered)
        expected["paid"] += paid
        expected["treasury"] += shares["treasury"]
        expected["operator"] += shares["operator"]
        expected["broker"] += shares["broker"]
        shares_of[product_id] = shares_of.get(product_id, 0) + shares["members"]
        view = market.order(n)
        assert view.productId == product_id and view.paid == paid and view.buyer == cast.consumer.address
        vesting = market.orderVesting(n)
        assert vesting.memberShare == shares["members"] and vesting.version == 1
    assert market.order(2).endsAt - market.order(2).startsAt == CREDIT_VALIDITY  # credits expire
    assert market.order(2).quantity == 10_000
    assert market.order(1).endsAt - market.order(1).startsAt == 2 * MONTH_SECONDS
    assert market.datasetSpec(3) == SPEC

    assert before["consumer"] - token.balanceOf(cast.consumer) == expected["paid"]
    assert token.balanceOf(env.treasury) - before["treasury"] == expected["treasury"]
    assert market.claimable(cast.operator) == expected["operator"]
    assert env.console["earnings"](cast.broker.address) == expected["broker"]
    assert market.claimable(cast.steward) == 0
    held = expected["operator"] + expected["broker"] + sum(shares_of.values())
    assert token.balanceOf(market) - before["market"] == held
    assert expected["paid"] == expected["treasury"] + held  # conservation, to the wei

    # The lockup curve follows consumption, at the location tier (the products require
    # LOCATION, not LIVE): 3 stream + 3 bundle vehicle-subscriptions, ceil(10,000 / 1,000)
    # credit units and one dataset unit.
    assert env.staking.usageOf(cast.consumer) == (3 + 3 + 10 + 1, Tier.LOCATION)
    assert market.usageOf(cast.consumer) == (17, Tier.LOCATION)

    # Operator and broker pull their earnings.
    for account, amount in ((cast.operator, expected["operator"]), (cast.broker, expected["broker"])):
        balance = token.balanceOf(account)
        market.withdrawEarnings(sender=account)
        assert token.balanceOf(account) - balance == amount
        assert market.claimable(account) == 0

    # Nothing vests at once: after five days a twentieth or so of the stream's share has; the
    # dataset vests at its delivery, which must come within its delivery window (seven days).
    start = market.order(1).startsAt
    chain.mine(timestamp=start + 5 * DAY)
    assert 0 < market.vestedMemberAmount(catalog.stream) < shares_of[catalog.stream] // 10
    assert market.vestedMemberAmount(catalog.dataset) == 0
    market.deliverDataset(3, keccak(text="the build"), sender=cast.dao)
    assert market.vestedMemberAmount(catalog.dataset) == shares_of[catalog.dataset]

    # Past every term (rounded up to the day grid) each product has vested its whole share.
    chain.mine(timestamp=start + 3 * MONTH_SECONDS + 2 * DAY)
    for product_id, share in shares_of.items():
        assert market.vestedMemberAmount(product_id) == share

    # One cumulative root over the stream and the bundle pays their three members equally, the
    # rounding remainder staying vested for the next root; it is pending for the delay.
    ids = sorted((catalog.stream, catalog.bundle))
    owners = [account for account, _ in members[catalog.stream]]
    owed = {a: sum(shares_of[p] // 3 for p in ids) for a in owners}
    takes = [shares_of[p] // 3 * 3 for p in ids]
    leaves = [cumulative_leaf(a, owed[a]) for a in owners]
    root, proofs = tree(leaves)
    market.proposeRoot(root, ids, takes, keccak(text="leaves file"), sender=cast.dao)
    with pytest.raises(market.RootNotYetClaimable):
        market.acceptRoot(ids, takes, sender=cast.relayer)
    chain.mine(timestamp=chain.pending_timestamp + market.rootDelay())
    market.acceptRoot(ids, takes, sender=cast.relayer)
    assert market.root() == root and market.totalTaken() == sum(takes)

    for i, account in enumerate(owners):
        balance = token.balanceOf(account)
        market.claim(account, owed[account], proofs[i], sender=cast.relayer)
        assert token.balanceOf(account) - balance == owed[account]
        with pytest.raises(market.NothingToClaim):
            market.claim(account, owed[account], proofs[i], sender=cast.relayer)
    assert market.totalClaimed() == sum(owed.values()) == sum(takes)
    assert token.balanceOf(market) == sum(shares_of.values()) - sum(takes)


def test_join_by_signature_is_refused_once_the_terms_moved(env, cast, catalog, chain):
    products = env.products
    vehicle = mint(env, cast, cast.signer.address, 20)
    deadline = chain.pending_timestamp + 3600
    nonce, signature = join_signature(env, cast.signer, catalog.api, vehicle, version=1, deadline=deadline)
    products.updateTerms(catalog.api, terms(Kind.API, DIMO // 50), sender=cast.operator)
    assert products.product(catalog.api).version == 2
    with pytest.raises(products.VersionMismatch):
        products.joinBySig(catalog.api, vehicle, 1, nonce, deadline, signature, sender=cast.relayer)
    nonce, fresh = join_signature(env, cast.signer, catalog.api, vehicle, version=2, deadline=deadline)
    products.joinBySig(catalog.api, vehicle, 2, nonce, deadline, fresh, sender=cast.relayer)
    assert products.isMember(catalog.api, vehicle)


def test_a_purchase_bound_to_its_quote_is_refused_once_the_terms_moved(env, cast, catalog):
    products, market, token = env.products, env.market, env.token
    quoted = products.saleTerms(catalog.stream).version
    products.updateTerms(catalog.stream, terms(Kind.STREAM, 1_000 * DIMO), sender=cast.operator)
    balance = token.balanceOf(cast.consumer)
    with pytest.raises(market.TermsVersionMoved):
        market.subscribe(
            catalog.stream, 3, 1, cast.broker, Use.INSURANCE, quoted, UINT256_MAX, sender=cast.consumer
        )
    assert token.balanceOf(cast.consumer) == balance
    market.subscribe(
        catalog.stream, 3, 1, cast.broker, Use.INSURANCE, quoted + 1, 3_000 * DIMO, sender=cast.consumer
    )
    assert balance - token.balanceOf(cast.consumer) == 3 * 1_000 * DIMO


def test_a_transfer_voids_the_membership(env, cast, catalog):
    products, owner, other = env.products, cast.owners[0], cast.owners[1]
    vehicle = mint(env, cast, owner.address, 30)
    products.join(catalog.stream, vehicle, sender=owner)
    count = products.memberCount(catalog.stream)
    env.vehicles.transferFrom(owner, other, vehicle, sender=owner)
    assert not products.isMember(catalog.stream, vehicle)
    products.leave(catalog.stream, vehicle, sender=cast.relayer)  # anyone, once transferred
    assert products.memberCount(catalog.stream) == count - 1


def test_console_fee_deactivation_and_earnings(env, cast, catalog):
    products, market, console = env.products, env.market, env.console
    console["set_protocol_fee"](250)
    assert products.protocolFeeBps() == 250
    with pytest.raises(ValueError, match="outside"):
        console["set_protocol_fee"](10_001)
    # Terms already agreed keep their fee; new terms must balance against the new one.
    assert products.productFeeBps(catalog.stream) == DEFAULT_PROTOCOL_FEE_BPS
    with pytest.raises(products.BpsSumMismatch):
        products.createProduct(terms(Kind.STREAM, DIMO), sender=cast.operator)
    products.createProduct(terms(Kind.STREAM, DIMO, membersBps=MEMBERS_BPS + 250), sender=cast.operator)

    console["deactivate_product"](catalog.dataset)
    assert not products.product(catalog.dataset).active
    with pytest.raises(market.ProductInactive):
        market.purchaseDataset(
            catalog.dataset, bytes(32), cast.broker, Use.RESEARCH, 1, UINT256_MAX, sender=cast.consumer
        )
    with pytest.raises(market.ComponentInactive):
        market.subscribe(
            catalog.bundle, 1, 1, cast.broker, Use.RESEARCH, 1, UINT256_MAX, sender=cast.consumer
        )

    before = console["earnings"](cast.broker.address)
    market.buyCredits(catalog.api, 100, cast.broker, Use.RESEARCH, 1, UINT256_MAX, sender=cast.consumer)
    assert console["earnings"](cast.broker.address) - before == (DIMO // 100 * 100) * BROKER_BPS // MAX_BPS
