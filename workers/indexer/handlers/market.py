"""DataProducts and Marketplace: products with every terms version, bundles, memberships
(live per version and generation), demand signals, orders with their declared use and split,
stewards, member pools, earnings, settled epochs and claims.

TermsUpdated carries only the version and BundleCreated only the component ids: the terms and
the monthly quantities are read at the event's own block (views.py) and arrive as `ev.view`.
"""

from __future__ import annotations

from typing import Any

from workers.indexer.decode import Event
from workers.indexer.handlers import on
from workers.indexer.store import Store
from workers.indexer.views import ViewCall, read_view
from workers.protocol import ZERO_ADDRESS, Kind

#: The kinds sold as subscriptions (`subscribe`): their orders stay in force until they end.
SUBSCRIPTION_KINDS = (Kind.STREAM, Kind.BUNDLE)
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
            "in_force": product is not None and product["kind"] in SUBSCRIPTION_KINDS,
            "spec_hash": None,
            "to_members": None,
            "to_operator": None,
            "to_broker": None,
            "to_treasury": None,
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
    pool = s.get("member_pools", order["product_id"]) or {
        "product_id": order["product_id"],
        "pool": 0,
        "last_epoch": 0,
    }
    pool.update(pool=pool["pool"] + ev.args["toMembers"], block_number=ev.block_number)
    s.put("member_pools", pool)
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


@on("Marketplace", "Settled")
def settled(ev: Event, s: Store) -> None:
    product_id, epoch, amount = ev.args["productId"], ev.args["epoch"], ev.args["amount"]
    s.put(
        "settled_epochs",
        {
            "product_id": product_id,
            "epoch": epoch,
            "amount": amount,
            "members_root": ev.args["membersRoot"],
            "claimed": 0,
            "tx_hash": ev.tx_hash,
            "block_number": ev.block_number,
        },
    )
    pool = s.get("member_pools", product_id) or {"product_id": product_id, "pool": 0, "last_epoch": 0}
    pool.update(pool=pool["pool"] - amount, last_epoch=epoch, block_number=ev.block_number)
    s.put("member_pools", pool)


@on("Marketplace", "Claimed")
def claimed(ev: Event, s: Store) -> None:
    product_id, epoch = ev.args["productId"], ev.args["epoch"]
    s.put(
        "claims",
        {
            "block_number": ev.block_number,
            "log_index": ev.log_index,
            "product_id": product_id,
            "epoch": epoch,
            "account": ev.args["account"],
            "amount": ev.args["amount"],
            "tx_hash": ev.tx_hash,
        },
    )
    epoch_row = s.get("settled_epochs", product_id, epoch)
    if epoch_row is not None:
        s.update(
            "settled_epochs", (product_id, epoch), claimed=(epoch_row["claimed"] or 0) + ev.args["amount"]
        )
