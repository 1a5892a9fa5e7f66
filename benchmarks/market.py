"""Market gas (issue 6): every market operation, then the three shape goals measured in the
same run: `settle` with a root for 100,000 members against one for 10; a typical `claim` (not
the first in its bitmap word) against a plain DIMO transfer to an address that holds none; a
purchase on a product with 3 members against one with 10,000.

Every number is the gasUsed of one transaction on the bench's anvil. "Execution" gas is gasUsed
minus the intrinsic 21,000 and calldata cost (calls with other ids differ in calldata only)."""

from __future__ import annotations

from eth_utils import keccak, to_checksum_address

from benchmarks.framework import BenchContext, Gas, Table, measure
from devkit.deployment import Deployer
from workers import eip712
from workers.merkle import PayoutTree
from workers.protocol import DIMO, MINTER_ROLE, UINT256_MAX, ZERO_ADDRESS, Kind, Role, Use, uses_mask
from workers.protocol.terms import terms

DAY = 86_400
#: Members of the big product in the purchase comparison, and of the big settlement root.
MANY_MEMBERS = 10_000
BIG_TREE = 100_000
SMALL_TREE = 10
MID_TREE = 1_000
#: Vehicles minted and joined per BenchMemberFarm transaction (fits the 15M gas of a bench tx).
FARM_BATCH = 60
#: What each member leaf pays: 0.01 DIMO.
LEAF_AMOUNT = DIMO // 100
#: Goal of issue 6: a typical claim costs at most this much more than a plain DIMO transfer.
CLAIM_OVERHEAD_GOAL = 25_000


def _fresh(label: str) -> str:
    """A deterministic address that has never held anything (no key needed: it only receives)."""
    return to_checksum_address(keccak(f"market bench {label}".encode())[12:])


def _terms(kind: int, price: int) -> tuple:
    return terms(
        kind,
        price,
        permittedUses=uses_mask(Use.INSURANCE, Use.RESEARCH),
        minCohort=3 if kind in (Kind.DATASET, Kind.BUNDLE) else 0,
        termsHash=keccak(b"t"),
        termsURI="ipfs://t",
    )


class MarketBench:
    """The deployment's market contracts and the accounts that act on them."""

    def __init__(self, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.token = ctx.contract("DimoToken")
        self.vehicles = ctx.contract("VehicleId")
        self.staking = ctx.contract("Staking")
        self.products = ctx.contract("DataProducts")
        self.market = ctx.contract("Marketplace")
        self.dao = ctx.deployer
        self.operator = ctx.sender(ctx.keys[4])
        self.broker = ctx.sender(ctx.keys[5])
        self.consumer = ctx.sender(ctx.keys[6])
        self.steward = ctx.sender(ctx.keys[7])
        self.owner = ctx.sender(ctx.keys[8])
        for who, role in (
            (self.operator, Role.OPERATOR),
            (self.broker, Role.BROKER),
            (self.steward, Role.BROKER),
            (self.consumer, Role.CONSUMER),
        ):
            self.dao.call(self.staking, "setWhitelisted", who.account.address, role, True)
        self.dao.call(self.market, "setSteward", self.steward.account.address, True)
        self.dao.call(self.token, "transfer", self.consumer.account.address, 10_000_000 * DIMO)
        self.consumer.call(self.token, "approve", self.market.address, UINT256_MAX)
        receipt = self.dao.call(self.vehicles, "addConnection", "Market bench OEM", self.dao.account.address)
        events = self.vehicles.events.ConnectionSet().process_receipt(receipt)
        self.connection = int(events[0]["args"]["connectionId"])
        self._vins = 0

    def create(self, kind: int, price: int) -> tuple[int, Gas]:
        gas = measure(self.ctx, self.operator, self.products, "createProduct", _terms(kind, price))
        return int(self.products.functions.productCount().call()), gas

    def create_bundle(self, components: list[int], quantities: list[int]) -> tuple[int, Gas]:
        terms = _terms(Kind.BUNDLE, 5 * DIMO)
        gas = measure(self.ctx, self.operator, self.products, "createBundle", terms, components, quantities)
        return int(self.products.functions.productCount().call()), gas

    def mint(self, to: str) -> int:
        self._vins += 1
        vin = keccak(f"market bench vin {self._vins}".encode())
        self.dao.call(self.vehicles, "mint", to, self.connection, vin)
        return int(self.vehicles.functions.vehicleOfVin(vin).call())

    def join_by_sig(self, product: int, vehicle: int) -> Gas:
        deadline = int(self.ctx.w3.eth.get_block("latest")["timestamp"]) + DAY
        owner = self.owner.account
        doc = eip712.join(
            eip712.domain(eip712.DATA_PRODUCTS_DOMAIN, self.ctx.w3.eth.chain_id, self.products.address),
            product_id=product,
            vehicle_id=vehicle,
            generation=self.vehicles.functions.generation(vehicle).call(),
            version=1,
            nonce=(nonce := eip712.free_nonce(self.products, owner.address)),
            deadline=deadline,
        )
        signature = eip712.sign(doc, owner.key)
        args = (product, vehicle, 1, nonce, deadline, signature)
        return measure(self.ctx, self.dao, self.products, "joinBySig", *args)

    def subscribe(self, product: int, vehicles: int, broker: Deployer | None = None) -> Gas:
        via = broker.account.address if broker else ZERO_ADDRESS
        args = (product, vehicles, 1, via, Use.INSURANCE)
        return measure(self.ctx, self.consumer, self.market, "subscribe", *args)

    def farm(self, product: int, members: int) -> None:
        """Gives `product` `members` more members through a BenchMemberFarm holding MINTER_ROLE."""
        farm = self.ctx.deploy_forge(
            "BenchMemberFarm.sol",
            "BenchMemberFarm",
            [self.vehicles.address, self.products.address, self.connection],
        )
        self.dao.call(self.vehicles, "grantRole", MINTER_ROLE, farm.address)
        left = members
        while left:
            batch = min(FARM_BATCH, left)
            self.dao.call(farm, "grow", product, batch)
            left -= batch

    def settle(self, product: int, epoch: int, tree: PayoutTree) -> Gas:
        args = (product, epoch, tree.total, tree.root_bytes)
        return measure(self.ctx, self.dao, self.market, "settle", *args)

    def claim(self, product: int, epoch: int, tree: PayoutTree, i: int) -> Gas:
        index, account, amount = tree.leaf(i)
        proof = tree.proof_bytes(i)
        args = (product, epoch, index, account, amount, proof)
        return measure(self.ctx, self.dao, self.market, "claim", *args)


def _tree(label: str, members: int) -> PayoutTree:
    return PayoutTree.from_amounts([(_fresh(f"{label} {i}"), LEAF_AMOUNT) for i in range(members)])


def _claim_leaf(tree: PayoutTree, position: int) -> int:
    """The value index of the leaf whose `index` field is `position` (0 and 1 share a word)."""
    return next(i for i in range(len(tree)) if tree.leaf(i)[0] == position)


def _catalog(b: MarketBench, ops: Table) -> tuple[int, int, int, int]:
    stream, g = b.create(Kind.STREAM, 2 * DIMO)
    ops.add("createProduct (Stream)", g.total, g.execution, "")
    api, g = b.create(Kind.API, DIMO // 100)
    ops.add("createProduct (Api)", g.total, g.execution, "")
    dataset, g = b.create(Kind.DATASET, 500 * DIMO)
    ops.add("createProduct (Dataset)", g.total, g.execution, "")
    bundle, g = b.create_bundle([stream, api, dataset], [0, 1_000, 0])
    ops.add("createBundle (3 components)", g.total, g.execution, "")
    return stream, api, dataset, bundle


def _membership(b: MarketBench, ops: Table, stream: int) -> None:
    owner = b.owner.account.address
    v1 = b.mint(owner)
    g = measure(b.ctx, b.owner, b.products, "join", stream, v1)
    ops.add("join", g.total, g.execution, "first consent of the vehicle")
    v2 = b.mint(owner)
    g = b.join_by_sig(stream, v2)
    ops.add("joinBySig (relayed)", g.total, g.execution, "EIP-712 Join, ECDSA owner")
    g = measure(b.ctx, b.owner, b.products, "leave", stream, v2)
    ops.add("leave", g.total, g.execution, "")


def _purchases(b: MarketBench, ops: Table, catalog: tuple[int, int, int, int]) -> None:
    stream, api, dataset, bundle = catalog
    broker = b.broker.account.address
    b.subscribe(stream, 1, b.broker)  # the buyer's first order: its usage slot goes 0 -> nonzero
    g = b.subscribe(stream, 10, b.broker)
    ops.add("subscribe (Stream, 10 vehicles x 1 month, broker)", g.total, g.execution, "buyer's 2nd order")
    g = b.subscribe(bundle, 10, b.steward)
    ops.add("subscribe (Bundle, steward)", g.total, g.execution, "broker share to the Treasury")
    g = measure(b.ctx, b.consumer, b.market, "buyCredits", api, 10_000, broker, Use.INSURANCE)
    ops.add("buyCredits (10,000 calls, broker)", g.total, g.execution, "")
    spec = keccak(b"battery health by region")
    g = measure(b.ctx, b.consumer, b.market, "purchaseDataset", dataset, spec, broker, Use.INSURANCE)
    ops.add("purchaseDataset (broker)", g.total, g.execution, "")
    g = measure(b.ctx, b.operator, b.market, "withdrawEarnings")
    ops.add("withdrawEarnings (operator)", g.total, g.execution, "")


def _settlement(b: MarketBench, ops: Table, shape: Table, stream: int) -> Table:
    """Settles roots of 10 to 100,000 members from one pool, then claims from each epoch."""
    b.subscribe(stream, 1_000, None)  # funds the member pool
    sizes = (SMALL_TREE, 100, MID_TREE, BIG_TREE)
    trees = {n: _tree(f"members {n}", n) for n in sizes}
    b.settle(stream, 1, _tree("warm-up", 2))  # the product's first epoch: lastEpoch 0 -> nonzero
    settled = {n: (epoch, b.settle(stream, epoch, trees[n])) for epoch, n in enumerate(sizes, start=2)}
    small, big = settled[SMALL_TREE][1], settled[BIG_TREE][1]
    ops.add(f"settle ({SMALL_TREE}-member root)", small.total, small.execution, "")
    ops.add(f"settle ({BIG_TREE:,}-member root)", big.total, big.execution, "")
    shape.add(
        f"settle: {SMALL_TREE}-member vs {BIG_TREE:,}-member root (execution gas)",
        small.execution,
        big.execution,
        small.execution == big.execution,
    )

    claims = Table(
        "Member claim against a plain DIMO transfer to an address that holds none",
        ["epoch size", "proof", "first in word", "typical claim", "DIMO transfer", "overhead", "goal"],
    )
    transfer = measure(b.ctx, b.dao, b.token, "transfer", _fresh("transfer target"), LEAF_AMOUNT)
    for n in sizes:
        epoch, tree = settled[n][0], trees[n]
        first = b.claim(stream, epoch, tree, _claim_leaf(tree, 0))
        typical = b.claim(stream, epoch, tree, _claim_leaf(tree, 1))
        overhead = typical.total - transfer.total
        meets = "meets" if overhead <= CLAIM_OVERHEAD_GOAL else "misses"
        proof = len(tree.proof_bytes(_claim_leaf(tree, 1)))
        claims.add(
            f"{n:,} members", proof, first.total, typical.total, transfer.total, f"{overhead:+,}", meets
        )
    ops.add(
        "claim (typical, 100,000-member epoch)", typical.total, typical.execution, "not first in its word"
    )
    ops.add("DIMO transfer to an empty address", transfer.total, transfer.execution, "the claim's baseline")
    claims.notes.append(
        f"goal: a typical claim (not the first in its bitmap word) at most {CLAIM_OVERHEAD_GOAL:,} gas over "
        "the transfer; claimant and transfer target both held no DIMO before"
    )
    claims.notes.append(
        "a proof level costs 512 gas of calldata plus its hashing; the storage floor of a claim is two "
        "words: the epoch's (found by the root the proof leads to: the proof check and the cap that "
        "keeps an epoch from paying more than it was settled with) and the bitmap word"
    )
    return claims


def _member_count_shape(b: MarketBench, shape: Table) -> None:
    """Purchases do not loop over members: 3 members against 10,000."""
    few, _ = b.create(Kind.STREAM, 2 * DIMO)
    many, _ = b.create(Kind.STREAM, 2 * DIMO)
    for _ in range(3):
        b.owner.call(b.products, "join", few, b.mint(b.owner.account.address))
    b.farm(many, MANY_MEMBERS)
    counts = [int(b.products.functions.memberCount(p).call()) for p in (few, many)]
    g_few = b.subscribe(few, 10, b.broker)
    g_many = b.subscribe(many, 10, b.broker)
    shape.add(
        f"subscribe: product with {counts[0]} vs {counts[1]:,} members (execution gas)",
        g_few.execution,
        g_many.execution,
        g_few.execution == g_many.execution,
    )


def run(ctx: BenchContext) -> list[Table]:
    b = MarketBench(ctx)
    ops = Table("Market gas", ["operation", "gas", "execution gas", "note"])
    shape = Table("Gas shape: no loop over members or leaves", ["comparison", "small", "large", "equal"])
    catalog = _catalog(b, ops)
    _membership(b, ops, catalog[0])
    _purchases(b, ops, catalog)
    claims = _settlement(b, ops, shape, catalog[0])
    _member_count_shape(b, shape)
    return [ops, claims, shape]
