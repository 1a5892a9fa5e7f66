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
    propose, vote, queue, execute, state, fast_forward
                                                    DAO proposals (issue 16; docs/governance.md)
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

import httpx
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
from workers.protocol import DIMO, MAX_PROTOCOL_FEE_BPS, ProposalState, Role, SlashSubject, permissions

#: Console name of each deployed contract.
HANDLE_NAMES = {
    "DimoToken": "token",
    "Treasury": "treasury",
    "VehicleId": "vehicles",
    "AftermarketDevice": "devices",
    "Staking": "staking",
    "DataProducts": "products",
    "Marketplace": "market",
    "DimoTimelock": "timelock",
    "DimoGovernor": "governor",
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
#     slash_id = propose_slash(account, "500 DIMO", "ipfs://report", order=7)  # freezes the stake
#     slash(account, "500 DIMO", "impacted.csv", "ipfs://report", slash_id=slash_id)  # after the vote
#     cancel_slash(slash_id)                          # the dispute went the account's way
# `slash` without `slash_id` proposes and executes at once (the reason is the proposal's
# reason URI); with one, it executes that pending proposal, which must name `amount`.
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


def send_slash_proposal(
    staking: Any,
    send: Callable[..., Any],
    account: str,
    amount: int,
    reason_uri: str,
    *,
    product: int | None,
    order: int | None,
) -> int:
    """Sends `proposeSlash` naming the product or the order (one of them, default product 0);
    returns the proposal's slash id."""
    if product is not None and order is not None:
        raise ValueError("a slash names a product or an order, not both")
    subject, subject_id = (
        (SlashSubject.ORDER, order) if order is not None else (SlashSubject.PRODUCT, product or 0)
    )
    call = staking.functions.proposeSlash(
        Web3.to_checksum_address(account), amount, subject, subject_id, reason_uri
    )
    receipt = send(call)
    return int(staking.events.SlashProposed().process_receipt(receipt, errors=DISCARD)[0]["args"]["slashId"])


def check_slash_proposal(staking: Any, slash_id: int, account: str, amount: int) -> None:
    """Refuses to execute `slash_id` unless it proposes `amount` of `account`."""
    proposal = staking.functions.slashProposal(slash_id).call()
    proposed_account, proposed_amount = proposal[0], proposal[4]
    if proposed_account.lower() != account.lower() or proposed_amount != amount:
        raise ValueError(
            f"slash {slash_id} proposes {proposed_amount} of {proposed_account}, not {amount} of {account}"
        )


def staking_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """whitelist, set_curve, propose_slash, slash and claim_slash bound to the deployment's Staking."""
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

    def propose_slash(
        account: str, amount: int | str, reason_uri: str, product: int | None = None, order: int | None = None
    ) -> int:
        """Proposes slashing up to `amount` of `account` for a product or an order (one of
        them, default product 0); freezes its stake until executed, cancelled or expired."""
        return send_slash_proposal(
            staking, send, account, dimo(amount), reason_uri, product=product, order=order
        )

    def slash(
        account: str, amount: int | str, impacted_csv: str | Path, reason: str, slash_id: int | None = None
    ) -> SlashResult:
        """Slashes up to `amount` of `account`: the CSV's owners get their rows, the Treasury the
        rest. Executes pending proposal `slash_id`, or proposes (reason URI `reason`) and executes."""
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
        if slash_id is None:
            slash_id = propose_slash(account, total, reason)
        else:
            check_slash_proposal(staking, slash_id, account, total)
        receipt = send(staking.functions.slash(slash_id, to_impacted, root))
        applied = staking.events.Slashed().process_receipt(receipt, errors=DISCARD)[0]["args"]
        if tree and tree_file:
            tree.write(tree_file, slashId=slash_id, **facts)
        return SlashResult(
            slash_id=slash_id,
            root="0x" + root.hex(),
            to_impacted=applied["toImpacted"],
            to_treasury=applied["amount"] - applied["toImpacted"],
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

    return {
        "whitelist": whitelist,
        "set_curve": set_curve,
        "propose_slash": propose_slash,
        "slash": slash,
        "claim_slash": claim_slash,
    }


SECTIONS.append(staking_section)


# ============================================================================ market (issues 6, 15)
# One line each:
#     set_protocol_fee(250)            # the DAO: bps for terms created or updated from now on
#     deactivate_product(3)            # the DAO (or the product's operator with sender=...)
#     earnings(operator)               # an operator's or broker's withdrawable earnings, base units
#     quote(stream, 10)                # (terms version, price x units) a purchase names
#     subscribe(stream, 10, 1, sender=buyer)          # every purchase names the terms version it
#     buy_credits(api, 1_000, sender=buyer)           #   was quoted and the most it pays
#     purchase_dataset(dataset, w3.keccak(text="spec"), sender=buyer)
#     refund(order_id, sender=buyer)   # the buyer takes back what has not vested (terms bumped,
#                                      #   product deactivated, operator slashed, not delivered)
#     vested(stream)                   # members' share of a product released so far
#     claim(owner)                     # pays `owner` everything owed, all products, in one call
#     accept_root()                    # anyone, once the pending root's delay has passed
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
    helpers = {
        "set_protocol_fee": set_protocol_fee,
        "deactivate_product": deactivate_product,
        "earnings": earnings,
        "products_domain": domain,
    }
    helpers.update(purchase_helpers(namespace))
    helpers.update(member_root_helpers(namespace))
    return helpers


def _placed_order(market: Any, receipt: Any) -> int:
    return int(market.events.OrderPlaced().process_receipt(receipt, errors=DISCARD)[0]["args"]["orderId"])


def purchase_helpers(namespace: dict[str, Any]) -> dict[str, Any]:
    """quote, subscribe, buy_credits, purchase_dataset and refund. A purchase names the terms
    version it was quoted and the most it pays: it reverts (TermsVersionMoved, PaymentAboveMax)
    rather than pay under other terms or more."""
    products, market, send = namespace["products"], namespace["market"], namespace["send"]
    no_broker = "0x" + "00" * 20

    def quote(product_id: int, units: int = 1) -> tuple[int, int]:
        """(current terms version, price x units): units are vehicle-months, calls or 1 dataset."""
        _operator, version, _active, terms = products.functions.product(product_id).call()
        return int(version), int(terms[1]) * units

    def place(  # noqa: PLR0917 (one call shape for the three purchases)
        function: str,
        product_id: int,
        quantity: tuple[Any, ...],
        units: int,
        sender: Deployer | None,
        broker: str,
        use: int,
        max_payment: int | str | None,
    ) -> int:
        """Sends `Marketplace.<function>(productId, *quantity, broker, use, version, maxPayment)`
        at the quoted version, paying at most the quote (or `max_payment`); the order id."""
        version, price = quote(product_id, units)
        cap = price if max_payment is None else dimo(max_payment)
        call = getattr(market.functions, function)(
            product_id, *quantity, _checksum(broker), use, version, cap
        )
        return _placed_order(market, send(call, sender))

    def subscribe(
        product_id: int,
        vehicles: int,
        months: int = 1,
        *,
        sender: Deployer | None = None,
        broker: str = no_broker,
        use: int = 0,
        max_payment: int | str | None = None,
    ) -> int:
        """Subscribes to a Stream or Bundle for `vehicles` x `months`; the order id."""
        return place(
            "subscribe", product_id, (vehicles, months), vehicles * months, sender, broker, use, max_payment
        )

    def buy_credits(
        product_id: int,
        calls: int,
        *,
        sender: Deployer | None = None,
        broker: str = no_broker,
        use: int = 0,
        max_payment: int | str | None = None,
    ) -> int:
        """Buys `calls` API credits (valid for the terms' validitySeconds); the order id."""
        return place("buyCredits", product_id, (calls,), calls, sender, broker, use, max_payment)

    def purchase_dataset(
        product_id: int,
        spec_hash: bytes,
        *,
        sender: Deployer | None = None,
        broker: str = no_broker,
        use: int = 0,
        max_payment: int | str | None = None,
    ) -> int:
        """Orders the dataset build `spec_hash`; members are paid once it is delivered."""
        return place("purchaseDataset", product_id, (spec_hash,), 1, sender, broker, use, max_payment)

    def refund(order_id: int, sender: Deployer | None = None) -> int:
        """The buyer takes back the unvested remainder of `order_id`; the amount refunded."""
        receipt = send(market.functions.refund(order_id), sender)
        return int(market.events.Refunded().process_receipt(receipt, errors=DISCARD)[0]["args"]["amount"])

    return {
        "quote": quote,
        "subscribe": subscribe,
        "buy_credits": buy_credits,
        "purchase_dataset": purchase_dataset,
        "refund": refund,
    }


def gateway_url() -> str:
    """The gateway the console asks for claims: GATEWAY_URL, else the local stack's."""
    if os.environ.get("GATEWAY_URL"):
        return os.environ["GATEWAY_URL"]
    if STACK_FILE.exists():
        return str(json.loads(STACK_FILE.read_text())["gateway_url"])
    return "http://localhost:8000"


def member_root_helpers(namespace: dict[str, Any]) -> dict[str, Any]:
    """vested, claim, accept_root, revoke_root and set_root_delay: the one cumulative member
    root (SPEC15 §4)."""
    market, send = namespace["market"], namespace["send"]

    def vested(product_id: int) -> int:
        """Members' share of `product_id` released so far (what roots may take), base units."""
        return int(market.functions.vestedMemberAmount(product_id).call())

    def claim(account: str, sender: Deployer | None = None, gateway: str | None = None) -> int:
        """Pays `account` everything it is owed, every product, in one transaction: the
        cumulative leaf and proof come from the gateway (GET /v1/members/{account}/claims);
        anyone may send it (the money goes to `account`). The amount paid (0: nothing owed)."""
        answer = httpx.get(f"{gateway or gateway_url()}/v1/members/{_checksum(account)}/claims", timeout=30)
        answer.raise_for_status()
        leaf = answer.json()
        if not leaf or int(leaf.get("claimable") or 0) == 0:
            return 0
        proof = [bytes.fromhex(p.removeprefix("0x")) for p in leaf["proof"]]
        receipt = send(market.functions.claim(_checksum(account), int(leaf["cumulative"]), proof), sender)
        return int(market.events.Claimed().process_receipt(receipt, errors=DISCARD)[0]["args"]["amount"])

    def pending_root() -> dict[str, Any] | None:
        """The pending root with the arrays it was proposed with (from its RootProposed event)."""
        root, claimable_at, _takes = market.functions.pendingRoot().call()
        if bytes(root) == bytes(32):
            return None
        events = market.events.RootProposed().get_logs(from_block=0, argument_filters={"root": root})
        args = events[-1]["args"]
        return {
            "root": "0x" + bytes(root).hex(),
            "claimable_at": int(claimable_at),
            "product_ids": list(args["productIds"]),
            "cumulative_taken": list(args["cumulativeTaken"]),
        }

    def accept_root(sender: Deployer | None = None) -> Any:
        """Makes the pending root claimable (anyone may, once its delay has passed)."""
        pending = pending_root()
        if pending is None:
            raise ValueError("no pending root")
        return send(market.functions.acceptRoot(pending["product_ids"], pending["cumulative_taken"]), sender)

    def revoke_root(sender: Deployer | None = None) -> Any:
        """The DAO (or the guardian) throws the pending root away before it becomes claimable."""
        return send(market.functions.revokePendingRoot(), sender)

    def set_root_delay(seconds: int) -> Any:
        """How long a new root stays pending (1 hour to 7 days; 24 hours by default)."""
        return send(market.functions.setRootDelay(seconds))

    return {
        "vested": vested,
        "claim": claim,
        "pending_root": pending_root,
        "accept_root": accept_root,
        "revoke_root": revoke_root,
        "set_root_delay": set_root_delay,
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

        def cancel_slash(slash_id: int) -> Any:
            """Cancels pending slash proposal `slash_id`, ending the freeze it holds (GOVERNOR)."""
            return send(staking.functions.cancelSlash(slash_id))

        def set_dispute_window(seconds: int) -> Any:
            """How long a slash proposal freezes its target's stake (1 to 30 days); it must
            outlast a vote plus the timelock delay when slashes are decided by vote."""
            return send(staking.functions.setDisputeWindow(seconds))

        def sweep_slash(slash_id: int) -> Any:
            """Sends what owners left unclaimed of slash `slash_id` to the Treasury (after its window)."""
            return send(staking.functions.sweepSlash(slash_id))

        helpers.update(
            {
                "set_tier_multiplier": set_tier_multiplier,
                "set_unbonding_period": set_unbonding_period,
                "set_claim_window": set_claim_window,
                "set_dispute_window": set_dispute_window,
                "cancel_slash": cancel_slash,
                "sweep_slash": sweep_slash,
            }
        )
    return helpers


SECTIONS.extend([governance_section, identity_governance_section, stake_governance_section])


# ============================================================================ DAO proposals (issue 16)
# The DAO acts through DimoGovernor and its DimoTimelock (docs/governance.md):
#     p = propose(staking.functions.setCurve(0, dimo("1000 DIMO"), 0), description="Operator curve")
#     vote(p)                      # "for" (default), "against" or "abstain"; sender= another voter
#     queue(p); execute(p)         # after the vote ends / after the timelock's delay
#     state(p)                     # "Pending", "Active", "Succeeded", "Queued", "Executed", …
#     fast_forward(p)              # devnet: moves anvil's clock to the proposal's next step

#: GovernorCountingSimple's vote types.
VOTE_SUPPORT = {"against": 0, "for": 1, "abstain": 2}


@dataclass(frozen=True)
class Proposal:
    """What a proposal is identified and executed by (the Governor hashes these into its id)."""

    proposal_id: int
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    description: str

    @property
    def description_hash(self) -> bytes:
        return bytes(Web3.keccak(text=self.description))


def proposal_section(namespace: dict[str, Any]) -> dict[str, Any]:
    """propose / vote / queue / execute / state / fast_forward on the deployment's Governor."""
    if "governor" not in namespace:
        return {}
    send = namespace["send"]
    w3: Web3 = namespace["w3"]
    governor = namespace["governor"]

    def propose(*calls: Any, description: str, sender: Deployer | None = None) -> Proposal:
        """Proposes the prepared calls (`contract.functions.f(...)`), run in order by the timelock."""
        if not calls:
            raise ValueError("a proposal needs at least one call")
        targets, values, calldatas = [], [], []
        for call in calls:
            target, value, data = call.address, 0, call.build_transaction({"gas": PROPOSAL_GAS})["data"]
            targets.append(target)
            values.append(value)
            calldatas.append(bytes.fromhex(data[2:]))
        receipt = send(governor.functions.propose(targets, values, calldatas, description), sender)
        created = governor.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        return Proposal(int(created[0]["args"]["proposalId"]), targets, values, calldatas, description)

    def vote(proposal: Proposal, support: str = "for", sender: Deployer | None = None) -> Any:
        """Casts the sender's votes (delegated DIMO and delegated stake at the snapshot)."""
        if support not in VOTE_SUPPORT:
            raise ValueError(f"support is one of {sorted(VOTE_SUPPORT)}, not {support!r}")
        return send(governor.functions.castVote(proposal.proposal_id, VOTE_SUPPORT[support]), sender)

    def queue(proposal: Proposal, sender: Deployer | None = None) -> Any:
        """Queues a succeeded proposal in the timelock (anyone may)."""
        p = proposal
        return send(governor.functions.queue(p.targets, p.values, p.calldatas, p.description_hash), sender)

    def execute(proposal: Proposal, sender: Deployer | None = None) -> Any:
        """Runs a queued proposal once the timelock's delay has passed (anyone may)."""
        p = proposal
        return send(governor.functions.execute(p.targets, p.values, p.calldatas, p.description_hash), sender)

    def state(proposal: Proposal) -> str:
        """The proposal's state, by name."""
        return ProposalState(governor.functions.state(proposal.proposal_id).call()).name.capitalize()

    def fast_forward(proposal: Proposal) -> int:
        """Devnet only: moves anvil's clock to when the proposal's next step may be taken (voting
        opens, voting has closed, the timelock's delay has passed); the new timestamp."""
        if w3.eth.chain_id != ANVIL_CHAIN_ID:
            raise ValueError("only a devnet's clock can be moved; wait for the proposal's next step")
        current = state(proposal)
        pid = proposal.proposal_id
        targets = {
            "Pending": governor.functions.proposalSnapshot(pid).call() + 1,
            "Active": governor.functions.proposalDeadline(pid).call() + 1,
            "Queued": governor.functions.proposalEta(pid).call(),
        }
        if current not in targets:
            raise ValueError(f"proposal {pid} is {current}: there is nothing to wait for")
        now = w3.eth.get_block("latest")["timestamp"]
        w3.provider.make_request("evm_increaseTime", [max(targets[current] - now, 0) + 1])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        return int(w3.eth.get_block("latest")["timestamp"])

    return {
        "propose": propose,
        "vote": vote,
        "queue": queue,
        "execute": execute,
        "state": state,
        "fast_forward": fast_forward,
    }


SECTIONS.append(proposal_section)
