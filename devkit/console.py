"""`ape console` opens with the deployment of the connected chain loaded (ape reads
`ape_console_extras.py` at the project root, which hands it `ape_init_extras` from here).

Handles (web3 contract objects, so calls read `token.functions.balanceOf(a).call()` and
governance actions are one line through `send`):

    token, treasury, ...        contract handles from the deployment (console_manifest)
    send(contract.functions.f(args))   sign with the deployer (DEPLOYER_KEY) and wait
    dao                         the deployer account (the devnet DAO)

Each later module adds its helpers in its own section below (registered in SECTIONS):

    whitelist, set_curve, slash, claim_slash        staking (issue 5)
    set_protocol_fee, deactivate_product, earnings  market (issue 6)
    release, grant_role, add_connection, set_steward, set_unbonding_period, …
                                                    governance (issue 9; docs/governance.md)
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from devkit.deployment import ANVIL_DEPLOYER_KEY, Deployer
from devkit.devnet import ANVIL_KEYS
from devkit.stack import STACK_FILE
from workers import eip712
from workers.chain.artifacts import load_artifact
from workers.chain.deployment import ANVIL_CHAIN_ID, Manifest, manifest_path, network_name
from workers.merkle import PayoutTree
from workers.protocol import DIMO, MAX_PROTOCOL_FEE_BPS, Role, permissions

#: Console name of each deployed contract.
HANDLE_NAMES = {
    "DimoToken": "token",
    "Treasury": "treasury",
    "VehicleId": "vehicles",
    "AftermarketDevice": "devices",
    "Staking": "staking",
    "DataProducts": "products",
    "Marketplace": "market",
}


#: Each section below registers `namespace -> {name: helper}`; build_namespace adds them all.
SECTIONS: list[Callable[[dict[str, Any]], dict[str, Any]]] = []


def load_handles(w3: Web3, manifest: Manifest) -> dict[str, Any]:
    """Contract handles for every contract of the manifest, by console name."""
    return {
        HANDLE_NAMES.get(name, name): w3.eth.contract(address=address, abi=load_artifact(name).abi)
        for name, address in manifest.contracts.items()
    }


def build_namespace(w3: Web3, manifest: Manifest, deployer_key: str = ANVIL_DEPLOYER_KEY) -> dict[str, Any]:
    """Everything `ape console` starts with; also used by tests and scripts."""
    dao = Deployer(w3, Account.from_key(deployer_key))

    def send(call: Any, sender: Deployer | None = None) -> Any:
        """Signs and sends a prepared contract call (`contract.functions.f(...)`), returns the receipt."""
        who = sender or dao
        return who.send(call.build_transaction({"gas": 15_000_000}), call.fn_name)

    namespace: dict[str, Any] = {"w3": w3, "manifest": manifest, "dao": dao, "send": send}
    namespace.update(load_handles(w3, manifest))
    namespace.update(identity_helpers(w3, namespace))
    for section in SECTIONS:
        namespace.update(section(namespace))
    return namespace


# ---------------------------------------------------------------- identity (VehicleId, AftermarketDevice)


def identity_helpers(w3: Web3, handles: dict[str, Any]) -> dict[str, Any]:
    """`vin_hash("5YJ3E1EA7KF317000")`, `perms.TELEMETRY | perms.LOCATION`, `eip712.grant(...)`,
    and the EIP-712 domains of `vehicles` and `devices` to sign typed messages against:

        nonce = eip712.free_nonce(vehicles, owner)   # any unused nonce; cancel: invalidateNonces
        doc = eip712.grant(vehicle_domain, vehicle_id=1, generation=vehicles.functions.generation(1).call(),
                           grantee=app, permissions=perms.LOCK, expires_at=2**64 - 1,
                           terms_hash=bytes(32), nonce=nonce, deadline=...)
        send(vehicles.functions.grantBySig(1, app, perms.LOCK, 2**64 - 1, bytes(32), owner,
                                           nonce, deadline, eip712.sign(doc, owner_key)))
    """
    helpers: dict[str, Any] = {"vin_hash": eip712.vin_hash, "eip712": eip712, "perms": permissions}
    chain_id = w3.eth.chain_id
    if "vehicles" in handles:
        helpers["vehicle_domain"] = eip712.domain(
            eip712.VEHICLE_DOMAIN, chain_id, handles["vehicles"].address
        )
    if "devices" in handles:
        helpers["device_domain"] = eip712.domain(eip712.DEVICE_DOMAIN, chain_id, handles["devices"].address)
    return helpers


def console_manifest(chain_id: int) -> Path:
    """The deployment the console loads: DEPLOYMENT_FILE if set, else
    deployments/<network>.json, else (on a devnet) the one `make up` deployed."""
    if os.environ.get("DEPLOYMENT_FILE"):
        return Path(os.environ["DEPLOYMENT_FILE"])
    path = manifest_path(network_name(chain_id))
    if not path.exists() and STACK_FILE.exists():
        stack_manifest = Path(json.loads(STACK_FILE.read_text()).get("deployment", ""))
        if stack_manifest.is_file() and Manifest.read(stack_manifest).chain_id == chain_id:
            return stack_manifest
    return path


def ape_init_extras(chain: Any) -> dict[str, Any]:
    """Called by `ape console`: loads the connected chain's deployment (console_manifest)."""
    w3 = chain.provider.web3
    path = console_manifest(w3.eth.chain_id)
    if not path.exists():
        print(f"no deployment for chain {w3.eth.chain_id} at {path}: run `make deploy` (or `make up`) first")
        return {}
    manifest = Manifest.read(path)
    namespace = build_namespace(w3, manifest, os.environ.get("DEPLOYER_KEY", ANVIL_DEPLOYER_KEY))
    loaded = ", ".join(sorted(k for k in namespace if k in HANDLE_NAMES.values()))
    print(f"deployment of chain {manifest.chain_id} loaded: {loaded}")
    return namespace


# ============================================================================ staking (issue 5)
# One line each, as the DAO (the deployer on a devnet):
#     whitelist(account, "Operator")                  # allowed=False removes
#     set_curve("Consumer", "1000 DIMO", "10 DIMO")   # base, per square-rooted unit
#     slash(account, "500 DIMO", "impacted.csv", "sold location data for resale")
# The CSV lists impacted owners as `owner,amount` (amounts in DIMO base units; a header row is
# fine). Their leaves are (row number, owner, amount); the root goes on-chain with toImpacted =
# the CSV's total, the rest of `amount` goes to the Treasury, and the tree is saved as
# `<csv stem>.tree.json` (StandardMerkleTree dump + slashId) for owners to claim with
# `claim_slash("impacted.tree.json", owner_key)`.


@dataclass(frozen=True)
class SlashResult:
    """What `slash` did: the slash id, the impact root and total, and where the tree was saved."""

    slash_id: int
    root: str
    to_impacted: int
    to_treasury: int
    tree_file: Path | None
    tx: str


def dimo(amount: int | str) -> int:
    """Base units from an int (base units already) or a string like "12.5 DIMO" / "12.5"."""
    if isinstance(amount, int):
        return amount
    text = amount.strip()
    if text.upper().endswith("DIMO"):
        text = text[: -len("DIMO")].strip()
    try:
        value = Decimal(text) * DIMO
    except InvalidOperation as exc:
        raise ValueError(f"{amount!r} is not an amount of DIMO") from exc
    if value != value.to_integral_value() or value < 0:
        raise ValueError(f"{amount!r} is not a whole number of base units")
    return int(value)


def staking_role(role: int | str) -> Role:
    """IStaking.Role from "Operator" / "broker" / 2."""
    if isinstance(role, int):
        try:
            return Role(role)
        except ValueError:
            raise ValueError(f"role {role} is not one of {[int(r) for r in Role]}") from None
    try:
        return Role[role.upper()]
    except KeyError:
        raise ValueError(f"role {role!r} is not one of {[r.name.title() for r in Role]}") from None


def read_impacted(csv_path: Path) -> list[tuple[str, int]]:
    """`owner,amount` rows (a header row is skipped) as (checksummed owner, base units)."""
    rows: list[tuple[str, int]] = []
    with csv_path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise ValueError(f"{csv_path}:{line}: expected owner,amount, got {row!r}")
            owner, amount = (cell.strip() for cell in row)
            if line == 1 and not amount.isdigit():
                continue  # header
            if not Web3.is_address(owner) or not amount.isdigit() or int(amount) == 0:
                raise ValueError(
                    f"{csv_path}:{line}: {owner!r},{amount!r} is not an address and a positive amount"
                )
            rows.append((Web3.to_checksum_address(owner), int(amount)))
    return rows


def tree_file_for(csv_path: Path) -> Path:
    """Where `slash` saves the tree of `impacted.csv`: `impacted.tree.json` beside it."""
    return csv_path.with_name(csv_path.stem + ".tree.json")


def staking_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """whitelist, set_curve, slash and claim_slash bound to the deployment's Staking."""
    if "staking" not in namespace:
        return {}
    w3: Web3 = namespace["w3"]
    staking = namespace["staking"]
    send = namespace["send"]

    def whitelist(account: str, role: int | str, allowed: bool = True) -> Any:
        """Adds `account` to `role`'s whitelist (or removes it with allowed=False)."""
        return send(
            staking.functions.setWhitelisted(Web3.to_checksum_address(account), staking_role(role), allowed)
        )

    def set_curve(role: int | str, base: int | str, per_sqrt_unit: int | str) -> Any:
        """Sets `role`'s lockup curve: base + per_sqrt_unit x sqrt(units) x tier multiplier."""
        return send(staking.functions.setCurve(staking_role(role), dimo(base), dimo(per_sqrt_unit)))

    def slash(account: str, amount: int | str, impacted_csv: str | Path, reason: str) -> SlashResult:
        """Slashes `amount` of `account`: the CSV's owners get their rows, the Treasury the rest."""
        csv_path = Path(impacted_csv)
        total = dimo(amount)
        payouts = read_impacted(csv_path)
        tree = PayoutTree.from_amounts(payouts) if payouts else None
        to_impacted = tree.total if tree else 0
        if to_impacted > total:
            raise ValueError(f"the impacted owners are owed {to_impacted}, more than the slash of {total}")
        tree_file = tree_file_for(csv_path) if tree else None
        facts = {"chainId": w3.eth.chain_id, "staking": staking.address, "account": account, "reason": reason}
        if tree and tree_file:  # saved before the transaction: the root is never on-chain without its tree
            tree.write(tree_file, slashId=None, **facts)
        root = tree.root_bytes if tree else bytes(32)
        receipt = send(
            staking.functions.slash(Web3.to_checksum_address(account), total, to_impacted, root, reason)
        )
        slash_id = staking.events.Slashed().process_receipt(receipt, errors=DISCARD)[0]["args"]["slashId"]
        if tree and tree_file:
            tree.write(tree_file, slashId=slash_id, **facts)
        return SlashResult(
            slash_id=slash_id,
            root="0x" + root.hex(),
            to_impacted=to_impacted,
            to_treasury=total - to_impacted,
            tree_file=tree_file,
            tx=receipt["transactionHash"].hex(),
        )

    def claim_slash(tree_file: str | Path, owner_key: str) -> list[Any]:
        """Claims every unclaimed leaf of the owner of `owner_key` in a saved slash tree."""
        path = Path(tree_file)
        saved = json.loads(path.read_text())
        if saved.get("slashId") is None:
            raise ValueError(f"{path} records no slashId: the slash transaction was not confirmed")
        slash_id = int(saved["slashId"])
        tree = PayoutTree.load(saved)
        owner = Deployer(w3, Account.from_key(owner_key))
        receipts = []
        for i in tree.indexes_of(owner.account.address):
            index, account, leaf_amount = tree.leaf(i)
            if staking.functions.isSlashClaimed(slash_id, index).call():
                continue
            call = staking.functions.claimSlash(slash_id, index, account, leaf_amount, tree.proof_bytes(i))
            receipts.append(send(call, owner))
        return receipts

    return {"whitelist": whitelist, "set_curve": set_curve, "slash": slash, "claim_slash": claim_slash}


SECTIONS.append(staking_section)


# ============================================================================ market (issue 6)
# One line each:
#     set_protocol_fee(250)            # the DAO: bps for terms created or updated from now on
#     deactivate_product(3)            # the DAO (or the product's operator with sender=...)
#     earnings(operator)               # an operator's or broker's withdrawable earnings, base units
# `products_domain` is the EIP-712 domain owners sign `eip712.join(...)` against.


def market_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """set_protocol_fee, deactivate_product and earnings bound to DataProducts and Marketplace."""
    if "products" not in namespace or "market" not in namespace:
        return {}
    w3: Web3 = namespace["w3"]
    products = namespace["products"]
    market = namespace["market"]
    send = namespace["send"]

    def set_protocol_fee(bps: int) -> Any:
        """Sets the protocol fee (0..2,000 bps) that new and updated terms are validated against."""
        if not 0 <= bps <= MAX_PROTOCOL_FEE_BPS:
            raise ValueError(f"protocol fee {bps} bps is outside 0..{MAX_PROTOCOL_FEE_BPS}")
        return send(products.functions.setProtocolFeeBps(bps))

    def deactivate_product(product_id: int, sender: Deployer | None = None) -> Any:
        """Stops sales of and joins to `product_id` (reactivate with products.functions.setActive)."""
        return send(products.functions.setActive(product_id, False), sender)

    def earnings(account: str) -> int:
        """What `account` (an operator or broker) can withdraw from the Marketplace, in base units."""
        return int(market.functions.claimable(Web3.to_checksum_address(account)).call())

    domain = eip712.domain(eip712.DATA_PRODUCTS_DOMAIN, w3.eth.chain_id, products.address)
    return {
        "set_protocol_fee": set_protocol_fee,
        "deactivate_product": deactivate_product,
        "earnings": earnings,
        "products_domain": domain,
    }


SECTIONS.append(market_section)


# ============================================================================ governance (issue 9)
# The DAO's remaining actions, one line each (docs/governance.md lists every action):
#     release(grantee, "250 DIMO")                     # Treasury.release of DIMO (token= for another)
#     grant_role(market, "SETTLER_ROLE", hot_wallet)   # revoke_role / has_role alike
#     add_connection("smartcar", oracle)               # -> the new connection id
#     set_connection(1, new_oracle, True)              # re-point or (False) switch off a connection
#     set_manufacturer(maker)                          # allowed=False removes
#     set_steward(broker)                              # steward=False removes
#     set_tier_multiplier(3, 40_000)                   # bps; never below a lower tier's
#     set_unbonding_period(14 * days)                  # set_claim_window(180 * days) alike
#     sweep_slash(1)                                   # anyone, once the claim window closed
#     proposal(staking.functions.setCurve(0, 10, 1))   # (target, value, calldata) for a timelock
# `dimo("12.5 DIMO")` converts amounts to base units; `days` is 86,400 seconds;
# `signer("0x<key>")` (or, on anvil, `signer(2)`: its test account 2) sends with `sender=`.

#: Seconds in a day, for periods typed in the console (`14 * days`).
DAY_SECONDS = 86_400
#: Gas placed in a proposal's dry build (only its calldata is kept; nothing is sent).
PROPOSAL_GAS = 1_000_000


class ConsoleSigner(Deployer):
    """A key to send with (`send(call, sender=operator)`), with its address at hand."""

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def key(self) -> bytes:
        return bytes(self.account.key)


def _checksum(account: str) -> str:
    return Web3.to_checksum_address(account)


def role_id(contract: Any, role: str | bytes) -> bytes:
    """A role's bytes32 id from its name as the contract exposes it ("SETTLER_ROLE")."""
    if isinstance(role, bytes):
        return role
    getter = getattr(contract.functions, role, None)
    if getter is None:
        raise ValueError(f"{role!r} is not a role constant of the contract at {contract.address}")
    return bytes(getter().call())


def governance_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """Signers, roles, proposals and Treasury releases."""
    send = namespace["send"]
    w3: Web3 = namespace["w3"]
    helpers: dict[str, Any] = {"dimo": dimo, "days": DAY_SECONDS, "role_id": role_id}

    def signer(key: str | int) -> ConsoleSigner:
        """A signer from a private key, or anvil's test account `key` (devnet only)."""
        if isinstance(key, int):
            if w3.eth.chain_id != ANVIL_CHAIN_ID:
                raise ValueError("numbered test accounts exist on anvil only; give a private key")
            key = ANVIL_KEYS[key]
        return ConsoleSigner(w3, Account.from_key(key))

    helpers["signer"] = signer

    def grant_role(contract: Any, role: str | bytes, account: str) -> Any:
        """Gives `account` `role` on `contract` (the DAO holds each contract's admin role)."""
        return send(contract.functions.grantRole(role_id(contract, role), _checksum(account)))

    def revoke_role(contract: Any, role: str | bytes, account: str) -> Any:
        """Takes `role` on `contract` from `account`."""
        return send(contract.functions.revokeRole(role_id(contract, role), _checksum(account)))

    def has_role(contract: Any, role: str | bytes, account: str) -> bool:
        return bool(contract.functions.hasRole(role_id(contract, role), _checksum(account)).call())

    def proposal(call: Any) -> tuple[str, int, str]:
        """(target, value, calldata) of a prepared call, for a timelock or governor proposal."""
        return call.address, 0, call.build_transaction({"gas": PROPOSAL_GAS})["data"]

    helpers.update(
        {"grant_role": grant_role, "revoke_role": revoke_role, "has_role": has_role, "proposal": proposal}
    )
    if "treasury" in namespace and "token" in namespace:
        treasury, token = namespace["treasury"], namespace["token"]

        def release(to: str, amount: int | str, token_address: str | None = None) -> Any:
            """Pays `amount` of DIMO (or of `token_address`) from the Treasury to `to`."""
            return send(
                treasury.functions.release(token_address or token.address, _checksum(to), dimo(amount))
            )

        helpers["release"] = release
    return helpers


def identity_governance_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """OEM connections (VehicleId) and device manufacturers (AftermarketDevice)."""
    send = namespace["send"]
    helpers: dict[str, Any] = {}
    if "vehicles" in namespace:
        vehicles = namespace["vehicles"]

        def add_connection(name: str, oracle: str) -> int:
            """Registers an OEM connection whose `oracle` signs MintAttestations; its id."""
            receipt = send(vehicles.functions.addConnection(name, _checksum(oracle)))
            return int(
                vehicles.events.ConnectionSet().process_receipt(receipt, errors=DISCARD)[0]["args"][
                    "connectionId"
                ]
            )

        def set_connection(connection_id: int, oracle: str, active: bool = True) -> Any:
            """Re-points connection `connection_id` to `oracle`, or switches it off (active=False)."""
            return send(vehicles.functions.setConnection(connection_id, _checksum(oracle), active))

        helpers.update({"add_connection": add_connection, "set_connection": set_connection})
    if "devices" in namespace:
        devices = namespace["devices"]

        def set_manufacturer(account: str, allowed: bool = True) -> Any:
            """Lets `account` mint AftermarketDevices (allowed=False withdraws it)."""
            return send(devices.functions.setManufacturer(_checksum(account), allowed))

        helpers["set_manufacturer"] = set_manufacturer
    return helpers


def stake_governance_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """Stewards (Marketplace), tier multipliers, unbonding, claim window and sweeps (Staking)."""
    send = namespace["send"]
    helpers: dict[str, Any] = {}
    if "market" in namespace:
        market = namespace["market"]

        def set_steward(broker: str, steward: bool = True) -> Any:
            """Marks `broker` as the DAO's steward: its commissions go to the Treasury."""
            return send(market.functions.setSteward(_checksum(broker), steward))

        helpers["set_steward"] = set_steward
    if "staking" in namespace:
        staking = namespace["staking"]

        def set_tier_multiplier(tier: int, bps: int) -> Any:
            """Sets sensitivity `tier`'s (0 telemetry … 3 commands) curve multiplier in bps."""
            return send(staking.functions.setTierMultiplier(tier, bps))

        def set_unbonding_period(seconds: int) -> Any:
            """How long unstaked DIMO stays slashable before `withdraw` (1 to 365 days)."""
            return send(staking.functions.setUnbondingPeriod(seconds))

        def set_claim_window(seconds: int) -> Any:
            """How long owners may claim future slashes before the rest is swept (7 to 3,650 days)."""
            return send(staking.functions.setClaimWindow(seconds))

        def sweep_slash(slash_id: int) -> Any:
            """Sends what owners left unclaimed of slash `slash_id` to the Treasury (after its window)."""
            return send(staking.functions.sweepSlash(slash_id))

        helpers.update(
            {
                "set_tier_multiplier": set_tier_multiplier,
                "set_unbonding_period": set_unbonding_period,
                "set_claim_window": set_claim_window,
                "sweep_slash": sweep_slash,
            }
        )
    return helpers


SECTIONS.extend([governance_section, identity_governance_section, stake_governance_section])
