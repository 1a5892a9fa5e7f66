"""DataProducts and Marketplace: products with every terms version, bundles, memberships
(live per version and generation), demand signals, orders with their declared use, split,
vesting, delivery and refund, stewards, earnings, the cumulative member roots (pending,
accepted, revoked or replaced), what accepted roots take from each product, and claims.

TermsUpdated carries only the version and BundleCreated only the component ids: the terms and
the monthly quantities are read at the event's own block (views.py) and arrive as `ev.view`.
"""

from __future__ import annotations

import json
from typing import Any

from workers.indexer.decode import Event
from workers.indexer.handlers import on
from workers.indexer.store import Store
from workers.indexer.views import ViewCall, read_view
from workers.protocol import ZERO_ADDRESS

#: market_roots.status: proposed and waiting for its delay; THE root members claim against
#: (the last accepted); revoked by the DAO or the guardian; replaced by a newer proposal.
ROOT_PENDING, ROOT_ACCEPTED, ROOT_REVOKED, ROOT_REPLACED = "pending", "accepted", "revoked", "replaced"
#: protocol_params of the Marketplace: the pending root as an integer (0: none), the delay.
PENDING_ROOT_PARAM, ROOT_DELAY_PARAM = "pending_root", "root_delay"
TERMS_COLUMNS = {
    "price": "price",
    "members_bps": "membersBps",
    "operator_bps": "operatorBps",
    "broker_bps": "brokerBps",
    "permitted_uses": "permittedUses",
    "required_permissions": "requiredPermissions",
    "refresh_seconds": "refreshSeconds",
    "min_cohort": "minCohort",
    "terms_hash": "termsHash",
    "terms_uri": "termsURI",
    "validity_seconds": "validitySeconds",
}


def _terms_from_input(function: str, args: dict[str, Any], ev: Event) -> dict[str, Any] | None:
    """createProduct / createBundle (version 1) and updateTerms carry the terms themselves."""
    if function in ("createProduct", "createBundle") and ev.args["version"] == 1:
        return {"version": 1, "terms": args["terms"]}
    if function == "updateTerms" and args["productId"] == ev.args["productId"]:
        return {"version": ev.args["version"], "terms": args["terms"]}
    return None


def _components_from_input(function: str, args: dict[str, Any], ev: Event) -> dict[str, Any] | None:
    """createBundle(terms, components, monthlyQuantities), by position (names vary)."""
    if function != "createBundle":
        return None
    _terms, components, quantities = args.values()
    if list(components) != list(ev.args["components"]):
        return None
    return {"productIds": components, "monthlyQuantities": quantities}


@read_view("DataProducts", "TermsUpdated")
def _terms_view(ev: Event) -> ViewCall:
    return ViewCall("DataProducts", "product", (ev.args["productId"],), _terms_from_input)


@read_view("DataProducts", "BundleCreated")
def _components_view(ev: Event) -> ViewCall:
    return ViewCall("DataProducts", "components", (ev.args["bundleId"],), _components_from_input)


@on("DataProducts", "ProductCreated")
def product_created(ev: Event, s: Store) -> None:
    s.put(
        "products",
        {
            "product_id": ev.args["productId"],
            "operator": ev.args["operator"],
            "kind": ev.args["kind"],
            "version": 0,
            "active": False,
            **dict.fromkeys(TERMS_COLUMNS),
            "created_block": ev.block_number,
            "block_number": ev.block_number,
        },
    )


def _terms_of(ev: Event) -> dict[str, Any]:
    """The terms of the event's version, or Nones when another update in the same block
    replaced them before the block ended (the view shows the block's final state)."""
    view = ev.view or {}
    if view.get("version") != ev.args["version"]:
        return dict.fromkeys(TERMS_COLUMNS)
    terms = view["terms"]
    return {column: terms[field] for column, field in TERMS_COLUMNS.items()}


@on("DataProducts", "TermsUpdated")
def terms_updated(ev: Event, s: Store) -> None:
    product_id, version = ev.args["productId"], ev.args["version"]
    terms = _terms_of(ev)
    product = s.update("products", (product_id,), version=version, block_number=ev.block_number, **terms)
    s.put(
        "product_terms",
        {
            "product_id": product_id,
            "version": version,
            "kind": product["kind"],
            **terms,
            "block_number": ev.block_number,
        },
    )


@on("DataProducts", "ProductActive")
def product_active(ev: Event, s: Store) -> None:
    s.update("products", (ev.args["productId"],), active=ev.args["active"], block_number=ev.block_number)


@on("DataProducts", "BundleCreated")
def bundle_created(ev: Event, s: Store) -> None:
    components = ev.args["components"]
    quantities = (ev.view or {}).get("monthlyQuantities") or [None] * len(components)
    for position, (component, quantity) in enumerate(zip(components, quantities, strict=True)):
        s.put(
            "bundle_components",
            {
                "bundle_id": ev.args["bundleId"],
                "position": position,
                "component_id": component,
                "monthly_quantity": quantity,
                "block_number": ev.block_number,
            },
        )


@on("DataProducts", "Joined")
def joined(ev: Event, s: Store) -> None:
    vehicle = s.get("vehicles", ev.args["vehicleId"])
    s.put(
        "memberships",
        {
            "product_id": ev.args["productId"],
            "vehicle_id": ev.args["vehicleId"],
            "owner": ev.args["owner"],
            "version": ev.args["version"],
            "generation": vehicle["generation"] if vehicle else None,
            "joined_at": ev.block_timestamp,
            "block_number": ev.block_number,
        },
    )


@on("DataProducts", "Left")
def left(ev: Event, s: Store) -> None:
    s.delete("memberships", ev.args["productId"], ev.args["vehicleId"])


@on("DataProducts", "DemandSignaled")
def demand_signaled(ev: Event, s: Store) -> None:
    s.put(
        "demand_signals",
        {
            "signal_id": ev.args["signalId"],
            "account": ev.args["account"],
            "spec_hash": ev.args["specHash"],
            "uri": ev.args["uri"],
            "budget": ev.args["budget"],
            "withdrawn": False,
            "created_block": ev.block_number,
            "block_number": ev.block_number,
        },
    )


@on("DataProducts", "DemandWithdrawn")
def demand_withdrawn(ev: Event, s: Store) -> None:
    s.update("demand_signals", (ev.args["signalId"],), withdrawn=True, block_number=ev.block_number)


@on("DataProducts", "ProtocolFeeSet")
def protocol_fee_set(ev: Event, s: Store) -> None:
    s.put(
        "protocol_params",
        {
            "contract": ev.contract,
            "name": "protocol_fee_bps",
            "value": ev.args["bps"],
            "block_number": ev.block_number,
        },
    )


# --- Marketplace ---------------------------------------------------------------------------


@on("Marketplace", "OrderPlaced")
def order_placed(ev: Event, s: Store) -> None:
    product = s.get("products", ev.args["productId"])
    s.put(
        "orders",
        {
            "order_id": ev.args["orderId"],
            "product_id": ev.args["productId"],
            "buyer": ev.args["buyer"],
            "broker": ev.args["broker"],
            "quantity": ev.args["quantity"],
            "paid": ev.args["paid"],
            "starts_at": ev.block_timestamp,
            "ends_at": ev.args["endsAt"],
            "use": ev.args["use"],
            # Every order counts in its buyer's usage until expired or refunded (SPEC15 §2).
            "in_force": True,
            "spec_hash": None,
            "to_members": None,
            "to_operator": None,
            "to_broker": None,
            "to_treasury": None,
            # A purchase names the current version (else TermsVersionMoved): the product's.
            "terms_version": product["version"] if product is not None else None,
            "member_share": None,
            "vest_starts_at": None,
            "vest_ends_at": None,
            "delivered_at": None,
            "result_hash": None,
            "refunded_at": None,
            "refunded_amount": None,
            "tx_hash": ev.tx_hash,
            "block_number": ev.block_number,
        },
    )


def _add_earnings(s: Store, ev: Event, account: str, amount: int) -> None:
    if amount == 0 or account == ZERO_ADDRESS:
        return
    row = s.get("earnings", account)
    s.put(
        "earnings",
        {
            "account": account,
            "claimable": (row["claimable"] if row else 0) + amount,
            "block_number": ev.block_number,
        },
    )


@on("Marketplace", "PaymentSplit")
def payment_split(ev: Event, s: Store) -> None:
    order = s.update(
        "orders",
        (ev.args["orderId"],),
        to_members=ev.args["toMembers"],
        to_operator=ev.args["toOperator"],
        to_broker=ev.args["toBroker"],
        to_treasury=ev.args["toTreasury"],
    )
    product = s.get("products", order["product_id"])
    if product is not None:
        _add_earnings(s, ev, product["operator"], ev.args["toOperator"])
    _add_earnings(s, ev, order["broker"], ev.args["toBroker"])


@on("Marketplace", "DatasetOrdered")
def dataset_ordered(ev: Event, s: Store) -> None:
    s.update("orders", (ev.args["orderId"],), spec_hash=ev.args["specHash"])


@on("Marketplace", "OrderExpired")
def order_expired(ev: Event, s: Store) -> None:
    s.update("orders", (ev.args["orderId"],), in_force=False)


@on("Marketplace", "EarningsWithdrawn")
def earnings_withdrawn(ev: Event, s: Store) -> None:
    s.put("earnings", {"account": ev.args["account"], "claimable": 0, "block_number": ev.block_number})


@on("Marketplace", "StewardSet")
def steward_set(ev: Event, s: Store) -> None:
    s.put(
        "stewards",
        {"broker": ev.args["broker"], "steward": ev.args["steward"], "block_number": ev.block_number},
    )


@on("Marketplace", "OrderVesting")
def order_vesting(ev: Event, s: Store) -> None:
    """At purchase (a dataset's times are 0 until delivery) and at a dataset's delivery."""
    s.update(
        "orders",
        (ev.args["orderId"],),
        member_share=ev.args["memberShare"],
        vest_starts_at=ev.args["vestStartsAt"],
        vest_ends_at=ev.args["vestEndsAt"],
    )


@on("Marketplace", "DatasetDelivered")
def dataset_delivered(ev: Event, s: Store) -> None:
    s.update(
        "orders",
        (ev.args["orderId"],),
        delivered_at=ev.block_timestamp,
        result_hash=ev.args["resultHash"],
    )


@on("Marketplace", "Refunded")
def refunded(ev: Event, s: Store) -> None:
    """The buyer took back the unvested remainder: the order ends now (the Marketplace moves
    its endsAt to the refund) and leaves its usage (OrderExpired, when it was in force)."""
    order = s.get("orders", ev.args["orderId"])
    ends_at = ev.block_timestamp if order is None else min(order["ends_at"], ev.block_timestamp)
    s.update(
        "orders",
        (ev.args["orderId"],),
        ends_at=ends_at,
        refunded_at=ev.block_timestamp,
        refunded_amount=ev.args["amount"],
        in_force=False,
    )


def _set_param(s: Store, ev: Event, name: str, value: int) -> None:
    s.put(
        "protocol_params",
        {"contract": ev.contract, "name": name, "value": value, "block_number": ev.block_number},
    )


def _pending_root(s: Store, ev: Event) -> str | None:
    row = s.get("protocol_params", ev.contract, PENDING_ROOT_PARAM)
    if row is None or row["value"] == 0:
        return None
    return f"0x{row['value']:064x}"


@on("Marketplace", "RootProposed")
def root_proposed(ev: Event, s: Store) -> None:
    """A new cumulative root waits for the delay; it replaces a pending one."""
    root = ev.args["root"]
    previous = _pending_root(s, ev)
    if previous is not None and previous != root:
        s.update("market_roots", (previous,), status=ROOT_REPLACED, block_number=ev.block_number)
    s.put(
        "market_roots",
        {
            "root": root,
            "status": ROOT_PENDING,
            "claimable_at": ev.args["claimableAt"],
            "data_hash": ev.args["dataHash"],
            "product_ids": json.dumps(list(ev.args["productIds"])),
            "cumulative_taken": json.dumps([str(x) for x in ev.args["cumulativeTaken"]]),
            "total_taken": None,
            "tx_hash": ev.tx_hash,
            "block_number": ev.block_number,
        },
    )
    _set_param(s, ev, PENDING_ROOT_PARAM, int(root, 16))


@on("Marketplace", "RootAccepted")
def root_accepted(ev: Event, s: Store) -> None:
    """The pending root becomes THE root; each product it names has its cumulative take."""
    root = s.update(
        "market_roots",
        (ev.args["root"],),
        status=ROOT_ACCEPTED,
        total_taken=ev.args["totalTaken"],
        block_number=ev.block_number,
    )
    products = json.loads(root["product_ids"])
    takes = json.loads(root["cumulative_taken"])
    for product_id, taken in zip(products, takes, strict=True):
        s.put(
            "product_taken", {"product_id": product_id, "taken": int(taken), "block_number": ev.block_number}
        )
    _set_param(s, ev, PENDING_ROOT_PARAM, 0)


@on("Marketplace", "RootRevoked")
def root_revoked(ev: Event, s: Store) -> None:
    s.update("market_roots", (ev.args["root"],), status=ROOT_REVOKED, block_number=ev.block_number)
    _set_param(s, ev, PENDING_ROOT_PARAM, 0)


@on("Marketplace", "RootDelaySet")
def root_delay_set(ev: Event, s: Store) -> None:
    _set_param(s, ev, ROOT_DELAY_PARAM, ev.args["delay"])


@on("Marketplace", "Claimed")
def claimed(ev: Event, s: Store) -> None:
    """One cumulative claim: `account` has now been paid `cumulative` in total."""
    account = ev.args["account"]
    s.put(
        "claims",
        {
            "block_number": ev.block_number,
            "log_index": ev.log_index,
            "account": account,
            "cumulative": ev.args["cumulative"],
            "amount": ev.args["amount"],
            "tx_hash": ev.tx_hash,
        },
    )
    s.put(
        "member_claims",
        {"account": account, "claimed": ev.args["cumulative"], "block_number": ev.block_number},
    )
