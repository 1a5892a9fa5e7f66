"""The whole story of DESIGN.md §5, told through the public interfaces a user has: wallets
sending transactions, the gateway's HTTP API (Sign-In with Ethereum), the automaker's consent
page (the simulator's), and the DAO's `ape console` one-liners. `scripts/demo.py` runs it
against a running local stack; each step prints what happened, balances to the wei."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import select
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from devkit.console import build_namespace
from devkit.deployment import Deployer
from devkit.devices import publish
from devkit.devnet import ANVIL_KEYS
from devkit.stack import StackInfo
from workers import eip712
from workers.chain.deployment import Manifest
from workers.db import Database
from workers.db.oem import DevicePayload
from workers.db.projections import Device
from workers.gateway.client import GatewayClient, GatewayRefusedError
from workers.merkle import PayoutTree
from workers.oem.telemetry import payload_hash, telemetry_domain, topic_of
from workers.protocol import DIMO, MONTH_SECONDS, UINT256_MAX, Kind, Role, Use, uses_mask
from workers.protocol import permissions as perms
from workers.protocol.terms import terms as protocol_terms
from workers.signals.zones import CELL_DEGREES, cell_centre

T = TypeVar("T")

DAY = 86_400
#: The on-chain OEM connections, as the workers' default OEM_CONNECTIONS know them.
CONNECTIONS = {1: "Smartcar-style", 2: "Tesla Fleet-style"}
#: How long the story waits for the workers (indexer, pulls, settlement) before it gives up.
WAIT_SECONDS = 120.0
#: Orbit's API credits stay valid for a year (Terms.validitySeconds).
CREDIT_VALIDITY = 365 * DAY
#: Months Acme's stream subscription runs: the settler pays it month by month.
STREAM_MONTHS = 3


def dimo(amount: int) -> str:
    """Base units as DIMO, to the wei."""
    whole, frac = divmod(amount, DIMO)
    return f"{whole:,}.{frac:018d} DIMO"


@dataclass(frozen=True)
class Actor:
    name: str
    key: str

    @property
    def address(self) -> str:
        return Account.from_key(self.key).address


def derived(name: str) -> Actor:
    """A fresh wallet with no ETH: it only signs, relayers send."""
    return Actor(name, "0x" + keccak(text=f"dimo demo {name}").hex())


@dataclass
class Narrator:
    """Prints the story: numbered steps, facts, and progress while the workers catch up."""

    step_number: int = 0

    def step(self, title: str) -> None:
        self.step_number += 1
        print(f"\n[{self.step_number:02d}] {title}", flush=True)

    def say(self, text: str) -> None:
        print(f"     {text}", flush=True)

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
        """Polls `probe` until it answers something truthy, printing a dot a second."""
        print(f"     waiting for {what} ", end="", flush=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = probe()
            except (GatewayRefusedError, httpx.HTTPError):
                answer = None
            if answer:
                print(" done", flush=True)
                return answer
            if time.monotonic() > deadline:
                print(" gave up", flush=True)
                raise TimeoutError(f"{what}: nothing after {timeout:.0f}s")
            print(".", end="", flush=True)
            time.sleep(1.0)


@dataclass
class World:
    """The running stack as its users see it."""

    stack: StackInfo
    w3: Web3
    manifest: Manifest
    console: dict[str, Any]
    say: Narrator = field(default_factory=Narrator)

    @classmethod
    def connect(cls, stack: StackInfo) -> World:
        w3 = Web3(Web3.HTTPProvider(stack.rpc_url, request_kwargs={"timeout": 60}))
        manifest = Manifest.read(Path(stack.deployment))
        return cls(stack, w3, manifest, build_namespace(w3, manifest, ANVIL_KEYS[0]))

    def contract(self, console_name: str) -> Contract:
        return self.console[console_name]

    def send(self, actor: Actor, call: Any) -> Any:
        """`actor` signs and sends a prepared contract call; returns the receipt."""
        return self.console["send"](call, Deployer(self.w3, Account.from_key(actor.key)))

    def balance(self, who: str) -> int:
        return int(self.contract("token").functions.balanceOf(who).call())

    def gateway(self, actor: Actor | None = None) -> GatewayClient:
        client = GatewayClient(self.stack.gateway_url)
        return client.sign_in(actor.key) if actor else client

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])


@dataclass
class Cast:
    dao: Actor = field(default_factory=lambda: Actor("DAO", ANVIL_KEYS[0]))
    alice: Actor = field(default_factory=lambda: Actor("Alice (owner)", ANVIL_KEYS[2]))
    bob: Actor = field(default_factory=lambda: Actor("Bob (owner)", ANVIL_KEYS[3]))
    carol: Actor = field(default_factory=lambda: derived("Carol (owner, signs only)"))
    dave: Actor = field(default_factory=lambda: Actor("Dave (driver)", ANVIL_KEYS[4]))
    operator: Actor = field(default_factory=lambda: Actor("Orbit Data Union (operator)", ANVIL_KEYS[5]))
    broker: Actor = field(default_factory=lambda: Actor("Bridge Brokers (broker)", ANVIL_KEYS[6]))
    steward: Actor = field(default_factory=lambda: Actor("DAO steward broker", ANVIL_KEYS[7]))
    consumer: Actor = field(default_factory=lambda: Actor("Acme Insurance (consumer)", ANVIL_KEYS[8]))
    relayer: Actor = field(default_factory=lambda: Actor("relayer / device maker", ANVIL_KEYS[9]))
    erin: Actor = field(default_factory=lambda: derived("Erin (buys Alice's car)"))
    device: Actor = field(default_factory=lambda: derived("plug-in device key"))

    @property
    def owners(self) -> list[Actor]:
        return [self.alice, self.bob, self.carol]


@dataclass
class Catalog:
    stream: int = 0
    api: int = 0
    dataset: int = 0
    bundle: int = 0
    orders: dict[str, int] = field(default_factory=dict)

    def products(self) -> list[int]:
        return [self.stream, self.api, self.dataset, self.bundle]


def terms(kind: int, price: int, refresh: int, min_cohort: int, edition: int = 1) -> tuple:
    """Orbit's terms: 70% members, 20% operator, 5% broker, 5% protocol fee; insurance or
    research; telemetry, location and live data; API credits valid for a year."""
    return protocol_terms(
        kind,
        price,
        permittedUses=uses_mask(Use.INSURANCE, Use.RESEARCH),
        requiredPermissions=perms.TELEMETRY | perms.LOCATION | perms.LIVE,
        refreshSeconds=refresh,
        minCohort=min_cohort,
        termsHash=keccak(text=f"Orbit terms {kind} edition {edition}"),
        termsURI=f"https://orbit.example/terms/{kind}/{edition}",
        validitySeconds=CREDIT_VALIDITY if kind == Kind.API else 0,
    )


def _point(signals: list[dict[str, Any]]) -> tuple[float, float]:
    """(latitude, longitude) of a signals answer."""
    values = {s["name"]: float(s["value"]) for s in signals}
    return values["Vehicle.CurrentLocation.Latitude"], values["Vehicle.CurrentLocation.Longitude"]


def _key(signal: dict[str, Any]) -> tuple[str, str, str]:
    return signal["name"], signal["timestamp"], signal["source"]


def _ms(signal: dict[str, Any]) -> int:
    """The unix ms of a served observation's ISO 8601 timestamp."""
    return int(datetime.fromisoformat(signal["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Story:
    def __init__(self, world: World) -> None:
        self.world = world
        self.cast = Cast()
        self.catalog = Catalog()
        self.vehicles: dict[str, int] = {}
        #: Each owner's car as onboarded: (connection, VIN).
        self.vins: dict[str, tuple[int, str]] = {}
        self.device_id = 0
        #: The stack's database, read to see what the device's messages came to.
        self.database = Database(world.stack.database_url)
        #: Alice's car's observations Acme read before the sale: (name, timestamp, source).
        self.before_sale: set[tuple[str, str, str]] = set()
        #: The time of the block that sold Alice's car (unix ms).
        self.sold_at_ms = 0
        self.say = world.say

    # ------------------------------------------------------------------ helpers
    def _tx(self, actor: Actor, call: Any) -> Any:
        return self.world.send(actor, call)

    # ------------------------------------------------------------------ the story
    def run(self) -> None:
        self.governance()
        self.onboard_through_the_automaker()
        self.keys_by_signature()
        self.plug_in_device()
        self.stake_and_whitelist()
        self.demand_and_products()
        self.owners_join()
        self.buy()
        self.serve()
        self.privacy_zone_at_work()
        self.settle_month_by_month()
        self.claim_everything_at_once()
        self.slash()
        self.transfer_voids_everything()
        self.new_owner_connects_the_car()
        self.previous_owner_data_stays_private()
        self.refund_after_new_terms()
        self.accounts()
        self.dao_proposal()

    def dao_proposal(self) -> None:
        """One whole DAO proposal: the DAO's delegated DIMO votes a Treasury grant to Alice
        through DimoGovernor; anvil's clock moves past the voting delay, the voting period and
        the timelock's delay; the timelock (not any key) executes it."""
        w, c = self.world, self.cast
        self.say.step("the DAO votes a Treasury grant: propose, vote, queue, execute through the timelock")
        console, token, treasury = w.console, w.contract("token"), w.contract("treasury")
        console["send"](token.functions.delegate(c.dao.address))
        grant = min(10 * DIMO, w.balance(treasury.address))
        if grant == 0:
            raise RuntimeError("the Treasury holds no DIMO: fees and slashes should have filled it")
        p = console["propose"](
            treasury.functions.release(token.address, c.alice.address, grant),
            description=f"Grant {dimo(grant)} to {c.alice.name}",
        )
        self.say.say(f"proposal {hex(p.proposal_id)[:12]}…: {p.description} ({console['state'](p)})")
        console["fast_forward"](p)
        console["vote"](p)
        _, votes_for, _ = w.contract("governor").functions.proposalVotes(p.proposal_id).call()
        self.say.say(f"the DAO votes for with {dimo(votes_for)} of delegated DIMO")
        console["fast_forward"](p)
        console["queue"](p)
        self.say.say(f"vote closed: {console['state'](p)} in the timelock; the clock moves past its delay")
        console["fast_forward"](p)
        before = w.balance(c.alice.address)
        console["execute"](p)
        self.say.say(
            f"{console['state'](p)} by the timelock: {c.alice.name} received "
            f"{dimo(w.balance(c.alice.address) - before)} from the Treasury"
        )

    def governance(self) -> None:
        w, c = self.world, self.cast
        self.say.step("the DAO configures the protocol (ape console one-liners)")
        vehicles = w.contract("vehicles")
        oracle = Account.from_key(ANVIL_KEYS[1]).address
        for connection_id, name in CONNECTIONS.items():
            self._tx(c.dao, vehicles.functions.addConnection(name, oracle))
            self.say.say(f"connection {connection_id}: {name} automaker cloud, oracle {oracle}")
        self._tx(c.dao, w.contract("devices").functions.setManufacturer(c.relayer.address, True))
        self.say.say(f"device manufacturer allowed: {c.relayer.address}")
        w.console["set_curve"]("Operator", "1000 DIMO", "0 DIMO")
        w.console["set_curve"]("Broker", "500 DIMO", "10 DIMO")
        w.console["set_curve"]("Consumer", "100 DIMO", "10 DIMO")
        self.say.say(
            "lockup curves: operator 1,000; broker 500 + 10 x sqrt(units); consumer 100 + 10 x sqrt(units)"
        )

    def _connect(self, owner: GatewayClient, connection: int, vin: str) -> dict[str, Any]:
        """The signed-in `owner` connects the car `vin` through the automaker: authorize, the
        consent page's "allow" (with the PKCE challenge), the automaker's redirect back (no
        bearer token: the state names the owner). The callback's answer."""
        w = self.world
        consent_url = httpx.URL(owner.get(f"/v1/oem/{connection}/authorize")["authorize_url"])
        state = consent_url.params["state"]
        code = httpx.post(
            f"{w.stack.simulator_url}/_sim/consent",
            json={
                "vin": vin,
                "redirect_uri": consent_url.params["redirect_uri"],
                "state": state,
                "code_challenge": consent_url.params["code_challenge"],
                "code_challenge_method": consent_url.params["code_challenge_method"],
            },
            timeout=10,
        ).json()["code"]
        return w.gateway().get(f"/v1/oem/{connection}/callback", code=code, state=state)

    def onboard_through_the_automaker(self) -> None:
        w, c = self.world, self.cast
        self.say.step(
            "owners sign in and connect their cars through the automaker: "
            "OAuth consent (PKCE) -> oracle attestation -> NFT"
        )
        fleet = httpx.get(f"{w.stack.simulator_url}/_sim/vehicles", timeout=10).json()
        smartcar = [car for car in fleet if car["oem"] == "smartcar"]
        tesla = [car for car in fleet if car["oem"] == "tesla"]
        plan = [(c.alice, 1, smartcar[0]), (c.bob, 1, smartcar[1]), (c.carol, 2, tesla[0])]
        for owner, connection, car in plan:
            signed_in = w.gateway(owner)  # onboarding mints to whoever signed in, nobody else
            attestation = self._connect(signed_in, connection, car["vin"])
            receipt = self._tx(
                c.relayer,
                w.contract("vehicles").functions.mintWithAttestation(
                    attestation["to"],
                    attestation["connection_id"],
                    bytes.fromhex(attestation["vin_hash"].removeprefix("0x")),
                    attestation["nonce"],
                    attestation["deadline"],
                    bytes.fromhex(attestation["signature"].removeprefix("0x")),
                ),
            )
            minted = (
                w.contract("vehicles")
                .events.VehicleMinted()
                .process_receipt(receipt, errors=DISCARD)[0]["args"]
            )
            self.vehicles[owner.name] = int(minted["vehicleId"])
            self.vins[owner.name] = (connection, car["vin"])
            self.say.say(
                f"{owner.name}: {car['make']} {car['model']} ({car['powertrain']}) "
                f"via {CONNECTIONS[connection]}, VIN {car['vin']} "
                f"-> vehicle #{minted['vehicleId']} (relayed, oracle-signed; owner paid no gas)"
            )
            signed_in.sign_out()
        try:
            signed_in.get(f"/v1/oem/{connection}/authorize")
        except GatewayRefusedError as refusal:
            self.say.say(f"each owner signs out after onboarding: the token is refused, '{refusal.reason}'")
        else:
            raise RuntimeError("the gateway still accepted a signed-out token")

    def keys_by_signature(self) -> None:
        w, c = self.world, self.cast
        vehicle = self.vehicles[c.alice.name]
        vehicles = w.contract("vehicles")
        self.say.step("Alice signs a key for Dave (LOCK | UNLOCK, 7 days); a relayer submits it")
        expires = w.now() + 7 * DAY
        deadline = w.now() + 3_600
        bits = perms.LOCK | perms.UNLOCK
        doc = eip712.grant(
            w.console["vehicle_domain"],
            vehicle_id=vehicle,
            generation=vehicles.functions.generation(vehicle).call(),
            grantee=c.dave.address,
            permissions=bits,
            expires_at=expires,
            terms_hash=bytes(32),
            nonce=(nonce := eip712.free_nonce(vehicles, c.alice.address)),
            deadline=deadline,
        )
        signature = eip712.sign(doc, c.alice.key)
        self._tx(
            c.relayer,
            vehicles.functions.grantBySig(
                vehicle, c.dave.address, bits, expires, bytes(32), c.alice.address, nonce, deadline, signature
            ),
        )
        self.say.say(
            f"Dave holds bits {vehicles.functions.permissionsOf(vehicle, c.dave.address).call():#010b} "
            f"on #{vehicle}"
        )
        dave = w.gateway(c.dave)
        accepted = dave.command(vehicle, "lock")
        self.say.say(
            f"Dave -> POST /v1/vehicles/{vehicle}/commands/lock: {accepted['status']} ({accepted['task_id']})"
        )
        try:
            dave.command(vehicle, "start")
        except GatewayRefusedError as refusal:
            self.say.say(f"Dave -> start (no DRIVE bit): refused, reason '{refusal.reason}'")

    def plug_in_device(self) -> None:
        w, c = self.world, self.cast
        devices = w.contract("devices")
        vehicle = self.vehicles[c.bob.name]
        self.say.step(
            "a plug-in device is minted, paired to Bob's car by its own signature, and sends signed telemetry"
        )
        receipt = self._tx(
            c.relayer, devices.functions.mintDevice(c.bob.address, c.device.address, keccak(text="SN-0001"))
        )
        self.device_id = int(
            devices.events.DeviceMinted().process_receipt(receipt, errors=DISCARD)[0]["args"]["deviceId"]
        )
        deadline = w.now() + 3_600
        pair_doc = eip712.pair(
            w.console["device_domain"],
            vehicle_id=vehicle,
            device_id=self.device_id,
            nonce=(nonce := eip712.free_nonce(devices, c.device.address)),
            deadline=deadline,
        )
        self._tx(
            c.bob,
            devices.functions.pair(
                vehicle, self.device_id, nonce, deadline, eip712.sign(pair_doc, c.device.key)
            ),
        )
        self.say.say(f"device #{self.device_id} paired with vehicle #{vehicle}")
        w.say.wait("the index to show the pairing (what the ingest checks)", lambda: self._paired(vehicle))
        signals = {"Vehicle.Speed": 42.0, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 77.5}
        body = {"device_id": self.device_id, **self._telemetry(1, signals)}
        publish(w.stack.mqtt_url, [body], client_id=f"device-{self.device_id}")
        self.say.say(f"device -> MQTT {w.stack.mqtt_url} {topic_of(self.device_id)} (QoS 1)")
        stored = w.say.wait("the ingest to verify and store it", lambda: self._stored_signals(1))
        self.say.say(f"signed payload seq 1 accepted over MQTT ({stored} signals stored with its signature)")
        gateway = w.gateway()
        try:
            gateway.post(f"/v1/devices/{self.device_id}/telemetry", body)
        except GatewayRefusedError as refusal:
            self.say.say(f"the same payload again (HTTP): refused, reason '{refusal.reason}'")
        forged = self._telemetry(2, signals, key=derived("someone else").key)
        try:
            gateway.post(f"/v1/devices/{self.device_id}/telemetry", forged)
        except GatewayRefusedError as refusal:
            self.say.say(f"a payload signed by another key: refused, reason '{refusal.reason}'")

    def _paired(self, vehicle: int) -> bool:
        with self.database.session(read_only=True) as session:
            paired = session.scalar(select(Device.vehicle_id).where(Device.device_id == self.device_id))
        return paired == vehicle

    def _stored_signals(self, sequence: int) -> int:
        """How many signals the device's payload `sequence` stored (0: not stored yet)."""
        with self.database.session(read_only=True) as session:
            canonical = session.scalar(
                select(DevicePayload.canonical).where(
                    DevicePayload.device_id == self.device_id, DevicePayload.sequence == sequence
                )
            )
        return 0 if canonical is None else len(json.loads(canonical))

    def _telemetry(self, sequence: int, signals: dict[str, float], key: str | None = None) -> dict[str, Any]:
        w = self.world
        timestamp = int(time.time())
        domain = telemetry_domain(w.w3.eth.chain_id, w.contract("devices").address)
        doc = eip712.telemetry(
            domain,
            device_id=self.device_id,
            sequence=sequence,
            timestamp=timestamp,
            payload_hash=payload_hash(signals),
        )
        signature = eip712.sign(doc, key or self.cast.device.key)
        return {
            "sequence": sequence,
            "timestamp": timestamp,
            "signals": signals,
            "signature": "0x" + signature.hex(),
        }

    def stake_and_whitelist(self) -> None:
        w, c = self.world, self.cast
        self.say.step("operator, brokers and consumer stake DIMO; the DAO whitelists them")
        token, staking = w.contract("token"), w.contract("staking")
        for actor, role, amount in (
            (c.operator, Role.OPERATOR, 2_000),
            (c.broker, Role.BROKER, 1_000),
            (c.steward, Role.BROKER, 1_000),
            (c.consumer, Role.CONSUMER, 1_000),
        ):
            self._tx(c.dao, token.functions.transfer(actor.address, (amount + 50_000) * DIMO))
            self._tx(actor, token.functions.approve(staking.address, amount * DIMO))
            self._tx(actor, staking.functions.stake(amount * DIMO))
            name = role.name.title()
            w.console["whitelist"](actor.address, name)
            active = staking.functions.isActive(actor.address, role).call()
            self.say.say(f"{actor.name:<34} staked {amount:,} DIMO, whitelisted {name}, active={active}")
        self._tx(c.dao, w.contract("market").functions.setSteward(c.steward.address, True))
        self.say.say(f"the DAO marks {c.steward.name} as its steward: its commission goes to the treasury")

    def demand_and_products(self) -> None:
        w, c = self.world, self.cast
        products = w.contract("products")
        self.say.step(
            "Acme signals demand; Orbit answers with a stream, an API, a dataset and a bundle of them"
        )
        spec = keccak(text="battery health and location of EVs by region")
        self._tx(
            c.consumer,
            products.functions.signalDemand(spec, "https://acme.example/wanted/ev-health", 5_000 * DIMO),
        )
        demand = self.say.wait("the demand signal on GET /v1/demand", lambda: w.gateway().get("/v1/demand"))
        self.say.say(f"open demand: {demand[0]['uri']} budget {dimo(int(demand[0]['budget']))}")
        for attr, kind, price, refresh, cohort in (
            ("stream", Kind.STREAM, 2 * DIMO, 5, 0),
            ("api", Kind.API, DIMO // 100, 5, 0),
            ("dataset", Kind.DATASET, 300 * DIMO, 5, 3),
        ):
            receipt = self._tx(
                c.operator, products.functions.createProduct(terms(kind, price, refresh, cohort))
            )
            setattr(
                self.catalog,
                attr,
                int(
                    products.events.ProductCreated().process_receipt(receipt, errors=DISCARD)[0]["args"][
                        "productId"
                    ]
                ),
            )
        components = [self.catalog.stream, self.catalog.api, self.catalog.dataset]
        receipt = self._tx(
            c.operator,
            products.functions.createBundle(terms(Kind.BUNDLE, 5 * DIMO, 5, 3), components, [0, 1_000, 0]),
        )
        self.catalog.bundle = int(
            products.events.BundleCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["bundleId"]
        )
        listed = self.say.wait(
            "the catalog on GET /v1/products",
            lambda: len(w.gateway().get("/v1/products")) >= 4 and w.gateway().get("/v1/products"),
        )
        for item in listed:
            price = int(item["terms"]["price"])
            self.say.say(f"product #{item['product_id']}: {item.get('kind')} at {dimo(price)}")

    def owners_join(self) -> None:
        w, c = self.world, self.cast
        products = w.contract("products")
        self.say.step("owners opt in: Alice and Bob send `join`, Carol signs `Join` and a relayer submits it")
        targets = [self.catalog.stream, self.catalog.api, self.catalog.dataset, self.catalog.bundle]
        for owner in (c.alice, c.bob):
            for product in targets:
                self._tx(owner, products.functions.join(product, self.vehicles[owner.name]))
        vehicle = self.vehicles[c.carol.name]
        for product in targets:
            version = products.functions.product(product).call()[1]
            deadline = w.now() + 3_600
            doc = eip712.join(
                w.console["products_domain"],
                product_id=product,
                vehicle_id=vehicle,
                generation=w.contract("vehicles").functions.generation(vehicle).call(),
                version=version,
                nonce=(nonce := eip712.free_nonce(products, c.carol.address)),
                deadline=deadline,
            )
            self._tx(
                c.relayer,
                products.functions.joinBySig(
                    product, vehicle, version, nonce, deadline, eip712.sign(doc, c.carol.key)
                ),
            )
        for product in targets:
            self.say.say(f"product #{product}: {products.functions.memberCount(product).call()} members")

    def buy(self) -> None:
        w, c = self.world, self.cast
        market, token = w.contract("market"), w.contract("token")
        self.say.step("Acme buys through Bridge Brokers, and the bundle through the DAO's steward")
        self._tx(c.consumer, token.functions.approve(market.address, UINT256_MAX))
        treasury = w.manifest.address("Treasury")
        before = {a: w.balance(a) for a in (c.consumer.address, treasury)}
        quote = w.console["quote"]

        def bounded(product_id: int, units: int) -> tuple[int, int]:
            """The terms version Acme read and the most it pays: the purchase is refused if the
            operator changes the terms or the price meanwhile."""
            return quote(product_id, units)

        cat, spec = self.catalog, keccak(text="state of health by region")
        orders = (
            (
                "stream",
                market.functions.subscribe(
                    cat.stream, 3, STREAM_MONTHS, c.broker.address, Use.INSURANCE,
                    *bounded(cat.stream, 3 * STREAM_MONTHS),
                ),
            ),
            (
                "api",
                market.functions.buyCredits(
                    cat.api, 100, c.broker.address, Use.INSURANCE, *bounded(cat.api, 100)
                ),
            ),
            (
                "dataset",
                market.functions.purchaseDataset(
                    cat.dataset, spec, c.broker.address, Use.RESEARCH, *bounded(cat.dataset, 1)
                ),
            ),
            (
                "bundle",
                market.functions.subscribe(
                    cat.bundle, 3, 1, c.steward.address, Use.RESEARCH, *bounded(cat.bundle, 3)
                ),
            ),
        )  # fmt: skip
        shares = 0
        for name, call in orders:
            receipt = self._tx(c.consumer, call)
            placed = market.events.OrderPlaced().process_receipt(receipt, errors=DISCARD)[0]["args"]
            vesting = market.events.OrderVesting().process_receipt(receipt, errors=DISCARD)[0]["args"]
            self.catalog.orders[name] = int(placed["orderId"])
            shares += int(vesting["memberShare"])
            window = (
                "vests at delivery"
                if vesting["vestEndsAt"] == 0
                else f"vests over {(vesting['vestEndsAt'] - vesting['vestStartsAt']) / DAY:.0f} days"
            )
            self.say.say(
                f"order #{placed['orderId']} ({name}): paid {dimo(int(placed['paid']))}, declared use bit "
                f"{placed['use']}; members' share {dimo(int(vesting['memberShare']))} {window}"
            )
        paid = before[c.consumer.address] - w.balance(c.consumer.address)
        fee_and_steward = w.balance(treasury) - before[treasury]
        self.say.say(
            f"Acme paid {dimo(paid)} in all; "
            f"the treasury received {dimo(fee_and_steward)} (fees + steward commission)"
        )
        self.say.say(f"operator earnings (pull): {dimo(w.console['earnings'](c.operator.address))}")
        self.say.say(f"Bridge Brokers earnings (pull): {dimo(w.console['earnings'](c.broker.address))}")
        self.say.say(
            f"steward earnings (to the treasury instead): {dimo(w.console['earnings'](c.steward.address))}"
        )
        self.say.say(f"members' shares, vesting over each order's term: {dimo(shares)}")
        accounted = (
            fee_and_steward
            + w.console["earnings"](c.operator.address)
            + w.console["earnings"](c.broker.address)
            + shares
        )
        self.say.say(
            f"conservation: paid {dimo(paid)} == treasury + operator + broker + members' shares "
            f"{dimo(accounted)}: {paid == accounted}"
        )

    def serve(self) -> None:
        w, c = self.world, self.cast
        self.say.step("the gateway serves Acme: metered API calls, a live stream, a dataset job")
        acme = w.gateway(c.consumer)
        api = self.catalog.api
        metered = {}
        for owner in c.owners:
            vehicle = self.vehicles[owner.name]
            metered[owner.name] = self.say.wait(
                f"the automaker pull of {owner.name}'s car (oem.schedule -> oem.pull)",
                lambda v=vehicle: (answer := acme.latest_signals(api, v))["signals"] and answer,
            )
        answer = metered[c.alice.name]
        self.say.say(
            f"GET /v1/products/{api}/vehicles/{answer['vehicle_id']}/signals/latest (one credit a call):"
        )
        shown = (
            "Vehicle.TraveledDistance",
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
            "Vehicle.CurrentLocation.Latitude",
            "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked",
        )
        for signal in [s for s in answer["signals"] if s["name"] in shown]:
            self.say.say(
                f"  {signal['name']} = {signal['value']} {signal.get('unit') or ''} ({signal['source']})"
            )
        stream = list(acme.stream(self.catalog.orders["stream"], events=4, refresh=5))
        opened = next(data for name, data in stream if name == "open")
        updates = [data for name, data in stream if name == "signals"]
        self.say.say(
            f"live stream of order #{opened['order_id']}: {opened['vehicles']} vehicles "
            f"every {opened['refresh']}s; "
            f"{len(updates)} updates, vehicles {sorted({u['vehicle_id'] for u in updates})}"
        )
        job = acme.post(
            f"/v1/orders/{self.catalog.orders['dataset']}/dataset",
            {"metric": "Vehicle.TraveledDistance", "bounds": [0, 300_000]},
        )
        result = self.say.wait(
            "the dataset job (datasets.build)",
            lambda: (
                (r := acme.get(f"/v1/datasets/{job['job_id']}"))["status"] in ("done", "failed", "refused")
                and r
            ),
        )
        released = result.get("result")
        self.say.say(
            f"dataset job {job['job_id']}: {result['status']}, differentially private "
            f"(epsilon {result['epsilon']:g} of the order's budget, {result['epsilon_remaining']:g} left)"
        )
        if released:
            noise = released["privacy"]
            rows = [[g, n, round(mean), round(scale)] for g, n, mean, scale in released["rows"]]
            self.say.say(
                f"  {released['columns']}: {rows}; noise scale: vehicles "
                f"{noise['vehicles']['scale']:g}, sum {noise['mean']['sum_scale']:g} km"
            )
        else:
            self.say.say(f"  {result.get('reason')}: {result.get('detail')}")

    def privacy_zone_at_work(self) -> None:
        w, c = self.world, self.cast
        api, vehicle = self.catalog.api, self.vehicles[c.bob.name]
        self.say.step("Bob marks his home as a privacy zone: Acme sees only a coarse grid cell there")
        acme = w.gateway(c.consumer)
        exact = _point(acme.latest_signals(api, vehicle)["signals"])
        self.say.say(f"before: Acme reads Bob's car #{vehicle} at {exact[0]:.6f}, {exact[1]:.6f}")
        bob = w.gateway(c.bob)
        zone = bob.post(
            f"/v1/vehicles/{vehicle}/zones",
            {"label": "home", "latitude": exact[0], "longitude": exact[1], "radius_m": 2_000},
        )
        self.say.say(
            f"Bob -> POST /v1/vehicles/{vehicle}/zones: zone #{zone['zone_id']} '{zone['label']}', "
            f"{zone['radius_m']:g} m around that point"
        )
        seen = _point(acme.latest_signals(api, vehicle)["signals"])
        expected = (cell_centre(exact[0]), cell_centre(exact[1]))
        if seen != expected:
            raise RuntimeError(f"Acme read {seen} inside Bob's home zone, not the cell centre {expected}")
        self.say.say(
            f"after: Acme reads {seen[0]:.6f}, {seen[1]:.6f}, the centre of the "
            f"{CELL_DEGREES:g}-degree cell around the zone (latest, history, streams and datasets alike)"
        )
        history = acme.get(
            f"/v1/products/{api}/vehicles/{vehicle}/signals",
            names="Vehicle.CurrentLocation.Latitude",
            **{"from": 0},
        )["signals"]
        coarse = sum(1 for s in history if s["value"] == expected[0])
        self.say.say(f"Acme's history of Bob's latitude: {coarse} of {len(history)} points coarsened")
        bob.sign_out()

    def _advance(self, seconds: int) -> None:
        """The chain's clock and the automaker's move `seconds` ahead together: observations stay
        on the blocks' time, which the tenure window of every read is measured in."""
        w = self.world
        w.w3.provider.make_request("evm_increaseTime", [seconds])
        w.w3.provider.make_request("evm_mine", [])
        httpx.post(
            f"{w.stack.simulator_url}/_sim/clock", json={"advance": seconds}, timeout=10
        ).raise_for_status()

    def _vesting_line(self) -> str:
        market = self.world.contract("market").functions
        parts = []
        for p in self.catalog.products():
            vested, taken = market.vestedMemberAmount(p).call(), market.takenMemberAmount(p).call()
            parts.append(f"#{p} vested {dimo(vested)} / taken {dimo(taken)}")
        return ", ".join(parts)

    def settle_month_by_month(self) -> None:
        w = self.world
        market = w.contract("market").functions
        self.say.step(
            f"the stream order's members' share vests over its {STREAM_MONTHS} months: each month the "
            "settler proposes one cumulative root over every product, the delay passes, it is accepted"
        )
        self.say.say(f"before: {self._vesting_line()}")
        delay = int(market.rootDelay().call())
        for month in range(1, STREAM_MONTHS + 1):
            self._advance(MONTH_SECONDS)
            month_started = w.now()
            self.say.say(f"(month {month}: the chain's and the automaker's clocks move 30 days ahead)")

            def proposed(since: int = month_started) -> tuple[bytes, int] | None:
                root, claimable_at, _takes = market.pendingRoot().call()
                return (bytes(root), int(claimable_at)) if claimable_at > since else None

            root, claimable_at = self.say.wait(
                f"the settler's root for month {month} (settlement.sweep -> close -> proposeRoot)", proposed
            )
            self.say.say(
                f"root 0x{root.hex()[:16]}… proposed: pending for {delay // 3600} h (the DAO or a guardian "
                f"may revoke it), claimable at {datetime.fromtimestamp(claimable_at, UTC):%Y-%m-%d %H:%M}"
            )
            self._advance(max(claimable_at - w.now(), 0) + 1)
            self.say.wait(
                f"the settler to accept root 0x{root.hex()[:16]}… (acceptRoot)",
                lambda r=root: bytes(market.root().call()) == r,
            )
            self.say.say(f"accepted: {self._vesting_line()}")
        stream = self.catalog.orders["stream"]
        share, starts, ends, _refunded, _version = market.orderVesting(stream).call()
        self.say.say(
            f"stream order #{stream}: {dimo(share)} to members, vested linearly from "
            f"{datetime.fromtimestamp(starts, UTC):%Y-%m-%d} to "
            f"{datetime.fromtimestamp(ends, UTC):%Y-%m-%d}; "
            f"total taken by roots {dimo(market.totalTaken().call())}, never above what vested"
        )

    def claim_everything_at_once(self) -> None:
        w, c = self.world, self.cast
        market = w.contract("market").functions
        self.say.step("each owner collects every product's earnings, all months, in ONE claim (relayed)")
        relayer = Deployer(w.w3, Account.from_key(c.relayer.key))
        root = "0x" + bytes(market.root().call()).hex()
        for owner in c.owners:
            leaf = self.say.wait(
                f"the gateway to serve {owner.name}'s leaf of the accepted root",
                lambda a=owner.address: (
                    (answer := w.gateway().get(f"/v1/members/{a}/claims"))["root"] == root and answer
                ),
            )
            before = w.balance(owner.address)
            paid = w.console["claim"](owner.address, sender=relayer, gateway=w.stack.gateway_url)
            if w.balance(owner.address) - before != paid:
                raise RuntimeError(f"{owner.name}'s claim paid {paid}, the balance moved otherwise")
            self.say.say(
                f"{owner.name:<34} one claim of {dimo(paid)} (cumulative {dimo(int(leaf['cumulative']))}, "
                f"proof of {len(leaf['proof'])} hashes)"
            )
        self.say.say(
            f"claimed in all {dimo(market.totalClaimed().call())} <= taken by roots "
            f"{dimo(market.totalTaken().call())}"
        )

    def slash(self) -> None:
        w, c = self.world, self.cast
        self.say.step("the DAO slashes the operator for a misuse; impacted owners claim their share")
        staking = w.contract("staking")
        csv = Path(w.stack.deployment).parent / "impacted.csv"
        csv.write_text(
            "owner,amount\n" + "".join(f"{o.address},{100 * DIMO}\n" for o in (c.alice, c.bob, c.carol))
        )
        result = w.console["slash"](
            c.operator.address, "500 DIMO", csv, "served location data beyond the terms"
        )
        self.say.say(
            f"slash #{result.slash_id}: 500 DIMO; {dimo(result.to_impacted)} to 3 owners, "
            f"{dimo(result.to_treasury)} to the treasury"
        )
        tree = PayoutTree.load(json.loads(Path(result.tree_file).read_text()))
        for owner in (c.alice, c.bob):
            before = w.balance(owner.address)
            w.console["claim_slash"](result.tree_file, owner.key)
            self.say.say(
                f"{owner.name:<34} claimed {dimo(w.balance(owner.address) - before)} (own transaction)"
            )
        before = w.balance(c.carol.address)
        for i in tree.indexes_of(c.carol.address):
            index, account, amount = tree.leaf(i)
            self._tx(
                c.relayer,
                staking.functions.claimSlash(result.slash_id, index, account, amount, tree.proof_bytes(i)),
            )
        self.say.say(
            f"{c.carol.name:<34} claimed {dimo(w.balance(c.carol.address) - before)} (relayed: no ETH)"
        )
        active, unbonding, _ = staking.functions.stakeOf(c.operator.address).call()
        self.say.say(f"operator stake now {dimo(active)} active, {dimo(unbonding)} unbonding")

    def transfer_voids_everything(self) -> None:
        w, c = self.world, self.cast
        vehicles, products = w.contract("vehicles"), w.contract("products")
        vehicle = self.vehicles[c.alice.name]
        self.say.step("Alice sells her car to Erin: the transfer voids every key and membership at once")
        alice_era = w.gateway(c.consumer).get(
            f"/v1/products/{self.catalog.api}/vehicles/{vehicle}/signals", **{"from": 0}
        )["signals"]
        self.before_sale = {_key(s) for s in alice_era}
        receipt = self._tx(c.alice, vehicles.functions.transferFrom(c.alice.address, c.erin.address, vehicle))
        self.sold_at_ms = 1000 * int(w.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
        self.say.say(f"generation of #{vehicle}: {vehicles.functions.generation(vehicle).call()}")
        self.say.say(f"Dave's bits now: {vehicles.functions.permissionsOf(vehicle, c.dave.address).call()}")
        self.say.say(
            f"still a member of stream #{self.catalog.stream}: "
            f"{products.functions.isMember(self.catalog.stream, vehicle).call()}"
        )
        try:
            w.gateway(c.dave).command(vehicle, "unlock")
        except GatewayRefusedError as refusal:
            self.say.say(f"Dave -> unlock: refused, reason '{refusal.reason}'")
        erin = w.gateway(c.erin)
        consents = self.say.wait(
            "the indexer to record the new owner",
            lambda: (
                (view := erin.get(f"/v1/vehicles/{vehicle}/consents"))["owner"].lower()
                == c.erin.address.lower()
                and view
            ),
        )
        self.say.say(
            f"Erin's GET /v1/vehicles/{vehicle}/consents: "
            f"keys {consents['keys']}, products {consents['products']}"
        )

    def new_owner_connects_the_car(self) -> None:
        w, c = self.world, self.cast
        vehicle = self.vehicles[c.alice.name]
        connection, vin = self.vins[c.alice.name]
        self.say.step(
            "Erin connects the car with her own automaker account; Alice, still on hers, cannot take it back"
        )
        relinked = self._connect(w.gateway(c.erin), connection, vin)
        self.say.say(
            f"Erin -> callback: vehicle #{relinked['vehicle_id']} linked to her consent "
            "(the sale is confirmed: Alice's OEM tokens are deleted)"
        )
        try:
            self._connect(w.gateway(c.alice), connection, vin)
        except GatewayRefusedError as refusal:
            self.say.say(f"Alice -> callback with her consent: refused, reason '{refusal.reason}'")
        else:
            raise RuntimeError(f"the previous owner re-linked vehicle #{vehicle}")

    def previous_owner_data_stays_private(self) -> None:
        w, c = self.world, self.cast
        products = w.contract("products")
        api, vehicle = self.catalog.api, self.vehicles[c.alice.name]
        self.say.step(
            "Erin joins Acme's API product: Acme reads the car's history again and finds only Erin's data"
        )
        version = products.functions.product(api).call()[1]
        deadline = w.now() + 3_600
        doc = eip712.join(
            w.console["products_domain"],
            product_id=api,
            vehicle_id=vehicle,
            generation=w.contract("vehicles").functions.generation(vehicle).call(),
            version=version,
            nonce=(nonce := eip712.free_nonce(products, c.erin.address)),
            deadline=deadline,
        )
        self._tx(
            c.relayer,
            products.functions.joinBySig(
                api, vehicle, version, nonce, deadline, eip712.sign(doc, c.erin.key)
            ),
        )
        self.say.say(f"Erin signs `Join` for product #{api}; a relayer submits it")
        acme = w.gateway(c.consumer)
        history = self.say.wait(
            "the indexer, then an automaker pull under Erin's tenure",
            lambda: acme.get(f"/v1/products/{api}/vehicles/{vehicle}/signals", **{"from": 0})["signals"],
        )
        leaked = [s for s in history if _key(s) in self.before_sale or _ms(s) < self.sold_at_ms]
        self.say.say(
            f"before the sale Acme had read {len(self.before_sale)} observations of this car under "
            f"Alice; GET .../signals?from=0 now answers {len(history)}, the earliest at "
            f"{min(s['timestamp'] for s in history)} (the sale's block: {_iso_ms(self.sold_at_ms)})"
        )
        if leaked:
            raise RuntimeError(f"{len(leaked)} observations of Alice's tenure were served after the sale")
        self.say.say("Alice's observations served to Acme after the sale: 0")

    def refund_after_new_terms(self) -> None:
        w, c = self.world, self.cast
        market, products = w.contract("market"), w.contract("products")
        stream = self.catalog.stream
        self.say.step(
            "Acme subscribes to the stream for a year; Orbit bumps the terms; Acme refunds the rest"
        )
        acme = Deployer(w.w3, Account.from_key(c.consumer.key))
        order = w.console["subscribe"](stream, 2, 12, sender=acme, broker=c.broker.address, use=Use.INSURANCE)
        share = market.functions.orderVesting(order).call()[0]
        self.say.say(
            f"order #{order}: 2 vehicles x 12 months; members' share {dimo(share)} vests over the year"
        )
        self._advance(MONTH_SECONDS)
        version = products.functions.product(stream).call()[1]
        self._tx(
            c.operator, products.functions.updateTerms(stream, terms(Kind.STREAM, 3 * DIMO, 5, 0, edition=2))
        )
        self.say.say(
            f"a month later Orbit raises the stream to 3 DIMO: terms v{version} -> "
            f"v{products.functions.product(stream).call()[1]}, every consent must be given again"
        )
        before = w.balance(c.consumer.address)
        refunded = w.console["refund"](order, sender=acme)
        vested, received = share - refunded, w.balance(c.consumer.address) - before
        self.say.say(
            f"Acme -> refund(#{order}): {dimo(refunded)} back (received {dimo(received)}); "
            f"the month that vested, {dimo(vested)}, stays the members'"
        )
        view = self.say.wait(
            "the indexer to record the refund",
            lambda: (answer := w.gateway().get(f"/v1/orders/{order}"))["status"] == "refunded" and answer,
        )
        self.say.say(
            f"GET /v1/orders/{order}: status {view['status']}, released to members "
            f"{dimo(int(view['vesting']['released']))}, refunded {dimo(int(view['refunded_amount']))}"
        )
        try:
            list(w.gateway(c.consumer).stream(order, events=1, refresh=5))
        except GatewayRefusedError as refusal:
            self.say.say(f"the gateway now refuses order #{order}: reason '{refusal.reason}'")
        else:
            raise RuntimeError(f"the gateway still streams refunded order #{order}")

    def accounts(self) -> None:
        w, c = self.world, self.cast
        self.say.step("where the money is now")
        staking = w.contract("staking")
        for owner in c.owners:
            self.say.say(f"{owner.name:<34} {dimo(w.balance(owner.address))}")
        for broker in (c.operator, c.broker):
            self.say.say(
                f"{broker.name:<34} earnings to withdraw {dimo(w.console['earnings'](broker.address))}"
            )
        active, _, _ = staking.functions.stakeOf(c.operator.address).call()
        self.say.say(f"{'operator stake (after the slash)':<34} {dimo(active)}")
        self.say.say(f"{'DAO treasury':<34} {dimo(w.balance(w.manifest.address('Treasury')))}")
