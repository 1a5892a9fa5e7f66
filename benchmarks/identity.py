"""Vehicle identity gas (issue 4): a key grant against Unlock Protocol's PublicLock
`grantKeys`, a vehicle transfer with 100 live keys against one with none, a vehicle
transfer against a plain OpenZeppelin ERC721 transfer, and both mints against an
OpenZeppelin ERC721 `_mint`; then the other identity operations on their own.

Every number is the gasUsed of one transaction on the bench's anvil. "Execution" gas is
gasUsed minus the intrinsic 21,000 and calldata cost, which differ between two calls only
by the zero bytes in their arguments (addresses, ids)."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from benchmarks.framework import BenchContext, Gas, Table, measure, ratio
from devkit.deployment import Deployer
from workers import eip712
from workers.protocol import NO_END, ZERO_ADDRESS
from workers.protocol.permissions import LOCATION, LOCK, MANAGE_KEYS, TELEMETRY, UNLOCK

#: Live keys on the "many keys" vehicle of the transfer comparison.
LIVE_KEYS = 100
#: Goals of issue 4.
GRANT_RATIO_GOAL = 0.5
TRANSFER_OVERHEAD_GOAL = 10_000
DAY = 86_400
#: PublicLock.initialize arguments: a free, 30-day, effectively unlimited lock priced in ETH.
LOCK_DURATION = 30 * DAY
LOCK_MAX_KEYS = 2**255
ETH = ZERO_ADDRESS


def _address(label: str) -> str:
    """A fresh, deterministic address that has never held anything."""
    return Account.from_key(keccak(f"identity bench {label}".encode())).address


def _now(ctx: BenchContext) -> int:
    return int(ctx.w3.eth.get_block("latest")["timestamp"])


class IdentityBench:
    """One VehicleId/AftermarketDevice deployment, its baselines and the accounts that act on them."""

    def __init__(self, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.vehicles = ctx.contract("VehicleId")
        self.devices = ctx.contract("AftermarketDevice")
        self.dao = ctx.deployer
        self.owner_a = ctx.sender(ctx.keys[1])
        self.owner_b = ctx.sender(ctx.keys[2])
        self.manager = ctx.sender(ctx.keys[3])
        self.oracle: LocalAccount = Account.from_key(keccak(b"identity bench oracle"))
        self.device_key: LocalAccount = Account.from_key(keccak(b"identity bench device"))
        self.erc721 = ctx.deploy_forge("BaselineERC721.sol", "BaselineERC721", [])
        self.lock = ctx.deploy_forge("BaselinePublicLock.sol", "BaselinePublicLock", [])
        self.dao.call(
            self.lock,
            "initialize",
            self.dao.account.address,
            LOCK_DURATION,
            ETH,
            0,
            LOCK_MAX_KEYS,
            "Baseline lock",
        )
        receipt = self.dao.call(self.vehicles, "addConnection", "Bench OEM", self.oracle.address)
        self.connection = int(
            self.vehicles.events.ConnectionSet().process_receipt(receipt)[0]["args"]["connectionId"]
        )
        self._vins = 0

    def vin(self) -> bytes:
        self._vins += 1
        return keccak(f"bench vin {self._vins}".encode())

    def mint(self, to: str) -> tuple[int, Gas]:
        vin = self.vin()
        gas = measure(self.ctx, self.dao, self.vehicles, "mint", to, self.connection, vin)
        return self.vehicles.functions.vehicleOfVin(vin).call(), gas

    def mint_with_attestation(self, to: str) -> Gas:
        vin = self.vin()
        deadline = _now(self.ctx) + DAY
        doc = eip712.mint_attestation(
            eip712.domain(eip712.VEHICLE_DOMAIN, self.ctx.w3.eth.chain_id, self.vehicles.address),
            to=to,
            connection_id=self.connection,
            vin_hash=vin,
            nonce=(nonce := eip712.free_nonce(self.vehicles, self.oracle.address)),
            deadline=deadline,
        )
        signature = eip712.sign(doc, self.oracle.key)
        return measure(
            self.ctx,
            self.dao,
            self.vehicles,
            "mintWithAttestation",
            to,
            self.connection,
            vin,
            nonce,
            deadline,
            signature,
        )

    def grant(self, owner: Deployer, vehicle_id: int, grantee: str, bits: int = TELEMETRY) -> Gas:
        return measure(
            self.ctx, owner, self.vehicles, "grant", vehicle_id, grantee, bits, NO_END, keccak(b"terms")
        )

    def grant_by_sig(self, owner: Deployer, vehicle_id: int, grantee: str) -> Gas:
        deadline = _now(self.ctx) + DAY
        terms = keccak(b"terms")
        doc = eip712.grant(
            eip712.domain(eip712.VEHICLE_DOMAIN, self.ctx.w3.eth.chain_id, self.vehicles.address),
            vehicle_id=vehicle_id,
            generation=self.vehicles.functions.generation(vehicle_id).call(),
            grantee=grantee,
            permissions=LOCATION,
            expires_at=NO_END,
            terms_hash=terms,
            nonce=(nonce := eip712.free_nonce(self.vehicles, owner.account.address)),
            deadline=deadline,
        )
        signature = eip712.sign(doc, owner.account.key)
        args = (
            vehicle_id,
            grantee,
            LOCATION,
            NO_END,
            terms,
            owner.account.address,
            nonce,
            deadline,
            signature,
        )
        return measure(self.ctx, self.dao, self.vehicles, "grantBySig", *args)

    def transfer(self, owner: Deployer, vehicle_id: int, to: str) -> Gas:
        return measure(self.ctx, owner, self.vehicles, "transferFrom", owner.account.address, to, vehicle_id)


def _comparisons(bench: IdentityBench) -> Table:
    a, b = bench.owner_a.account.address, bench.owner_b.account.address
    table = Table(
        "Vehicle identity gas against baselines",
        ["operation", "ours", "baseline", "baseline gas", "ours / baseline", "goal", "met"],
    )

    # grant of one key vs PublicLock.grantKeys of one key, both to a fresh grantee.
    vehicle_a, _ = bench.mint(a)
    ours = bench.grant(bench.owner_a, vehicle_a, _address("grantee"))
    theirs = measure(
        bench.ctx,
        bench.dao,
        bench.lock,
        "grantKeys",
        [_address("lock key holder")],
        [_now(bench.ctx) + LOCK_DURATION],
        [bench.dao.account.address],
    )
    met = ours.total <= GRANT_RATIO_GOAL * theirs.total
    table.add(
        "grant one key",
        ours.total,
        "PublicLock v14 grantKeys (1 key)",
        theirs.total,
        ratio(ours.total, theirs.total),
        f"<= {GRANT_RATIO_GOAL:.2f}x",
        met,
    )

    # Transfer of a vehicle with 100 live keys vs one with none: each owner holds one vehicle,
    # each goes to a fresh address, so the storage transitions are the same.
    for i in range(LIVE_KEYS - 1):
        bench.grant(bench.owner_a, vehicle_a, _address(f"key {i}"), TELEMETRY | LOCATION)
    live = (
        sum(
            1
            for i in range(LIVE_KEYS - 1)
            if bench.vehicles.functions.permissionsOf(vehicle_a, _address(f"key {i}")).call()
        )
        + 1
    )
    vehicle_b, _ = bench.mint(b)
    many = bench.transfer(bench.owner_a, vehicle_a, _address("buyer a"))
    none = bench.transfer(bench.owner_b, vehicle_b, _address("buyer b"))
    table.add(
        f"transfer, vehicle with {live} live keys (execution gas)",
        many.execution,
        "the same transfer, vehicle with 0 keys",
        none.execution,
        ratio(many.execution, none.execution),
        "equal",
        many.execution == none.execution,
    )
    table.add(
        f"transfer, vehicle with {live} live keys (tx gas)",
        many.total,
        "the same transfer, vehicle with 0 keys",
        none.total,
        ratio(many.total, none.total),
        "-",
        "-",
    )
    stale = bench.vehicles.functions.permissionsOf(vehicle_a, _address("key 0")).call()

    # Vehicle transfer vs a plain OpenZeppelin ERC721 transfer, same shape (sole token, fresh recipient).
    baseline_id = int(bench.erc721.functions.mint(a).call({"from": a}))
    bench.owner_a.call(bench.erc721, "mint", a)
    vehicle_c, _ = bench.mint(a)
    ours = bench.transfer(bench.owner_a, vehicle_c, _address("buyer c"))
    theirs = measure(
        bench.ctx, bench.owner_a, bench.erc721, "transferFrom", a, _address("buyer d"), baseline_id
    )
    overhead = ours.total - theirs.total
    table.add(
        "vehicle transfer",
        ours.total,
        "OZ ERC721 transferFrom",
        theirs.total,
        f"{ratio(ours.total, theirs.total)} ({overhead:+,} gas)",
        f"<= +{TRANSFER_OVERHEAD_GOAL:,} gas",
        overhead <= TRANSFER_OVERHEAD_GOAL,
    )

    # Mints to fresh owners; every counter already non-zero (one mint each happened above).
    ours_mint = bench.mint(_address("mint to"))[1]
    ours_attested = bench.mint_with_attestation(_address("attested to"))
    theirs = measure(bench.ctx, bench.dao, bench.erc721, "mint", _address("erc721 mint to"))
    table.add(
        "mint (MINTER_ROLE)",
        ours_mint.total,
        "OZ ERC721 _mint",
        theirs.total,
        ratio(ours_mint.total, theirs.total),
        "-",
        "-",
    )
    table.add(
        "mintWithAttestation (oracle EIP-712)",
        ours_attested.total,
        "OZ ERC721 _mint",
        theirs.total,
        ratio(ours_attested.total, theirs.total),
        "-",
        "-",
    )

    table.notes += [
        "PublicLock v14 from npm @unlock-protocol/contracts, deployed directly (no proxy) and initialised by "
        "the deployer; grantKeys mints a key NFT with an expiry and a key manager.",
        f"After the transfer the {live} earlier keys hold {stale} bits: voided by the generation bump, "
        "with no loop over them.",
        "Execution gas = gasUsed - 21,000 - calldata (16 gas a non-zero byte, 4 a zero byte).",
        "Our mints also record the VIN both ways and the vehicle record (connection, generation).",
    ]
    return table


def _other_operations(bench: IdentityBench) -> Table:
    table = Table("Vehicle identity gas, other operations", ["operation", "gas"])
    a = bench.owner_a.account.address
    vehicle, _ = bench.mint(a)
    rows: list[tuple[str, Gas]] = [
        (
            "grantBySig (owner's EIP-712 Grant, relayed)",
            bench.grant_by_sig(bench.owner_a, vehicle, _address("sig")),
        ),
        (
            "grant MANAGE_KEYS|LOCK|UNLOCK to a manager",
            bench.grant(bench.owner_a, vehicle, bench.manager.account.address, MANAGE_KEYS | LOCK | UNLOCK),
        ),
        ("grant by a MANAGE_KEYS holder", bench.grant(bench.manager, vehicle, _address("valet"), LOCK)),
        ("revoke", measure(bench.ctx, bench.owner_a, bench.vehicles, "revoke", vehicle, _address("valet"))),
        (
            "setUser (ERC-4907)",
            measure(
                bench.ctx,
                bench.owner_a,
                bench.vehicles,
                "setUser",
                vehicle,
                _address("driver"),
                _now(bench.ctx) + DAY,
            ),
        ),
    ]
    bench.dao.call(bench.devices, "setManufacturer", bench.dao.account.address, True)
    mint_device = measure(
        bench.ctx,
        bench.dao,
        bench.devices,
        "mintDevice",
        a,
        bench.device_key.address,
        keccak(b"bench serial"),
    )
    device_id = bench.devices.functions.deviceOfSigner(bench.device_key.address).call()
    deadline = _now(bench.ctx) + DAY
    doc = eip712.pair(
        eip712.domain(eip712.DEVICE_DOMAIN, bench.ctx.w3.eth.chain_id, bench.devices.address),
        vehicle_id=vehicle,
        device_id=device_id,
        nonce=(pair_nonce := eip712.free_nonce(bench.devices, bench.device_key.address)),
        deadline=deadline,
    )
    signature = eip712.sign(doc, bench.device_key.key)
    rows += [
        ("mintDevice", mint_device),
        (
            "pair (device key's EIP-712 Pair)",
            measure(
                bench.ctx,
                bench.owner_a,
                bench.devices,
                "pair",
                vehicle,
                device_id,
                pair_nonce,
                deadline,
                signature,
            ),
        ),
        ("unpair", measure(bench.ctx, bench.owner_a, bench.devices, "unpair", vehicle)),
        (
            "transfer with a live user (emits UpdateUser)",
            bench.transfer(bench.owner_a, vehicle, _address("buyer e")),
        ),
        (
            "burn (frees the VIN)",
            measure(bench.ctx, bench.owner_a, bench.vehicles, "burn", bench.mint(a)[0]),
        ),
    ]
    for label, gas in rows:
        table.add(label, gas.total)
    return table


def run(ctx: BenchContext) -> list[Table]:
    bench = IdentityBench(ctx)
    return [_comparisons(bench), _other_operations(bench)]
