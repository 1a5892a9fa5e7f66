"""The chain's state read through the contracts' views, compared with the index: every
projection, row by row, against the views that answer the same question."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine
from web3.exceptions import ContractLogicError

from tests.support.history import ACCOUNTS, History
from tests.support.projections import rows
from workers.protocol import DEFAULT_ROOT_DELAY, ZERO_ADDRESS, Role, SlashStatus, Tier

ZERO32 = "0x" + "00" * 32


def index_vs_chain(engine: Engine, history: History) -> list[str]:
    """Every disagreement between the projections and the chain's views (empty: none)."""
    problems: list[str] = []
    problems += _token(engine, history)
    problems += _roles(engine, history)
    if history.has("VehicleId"):
        problems += list(_identity(engine, history))
    if history.has("AftermarketDevice"):
        problems += list(_devices(engine, history))
    if history.has("Staking"):
        problems += list(_staking(engine, history))
    if history.has("DataProducts"):
        problems += list(_products(engine, history))
    if history.has("Marketplace"):
        problems += list(_market(engine, history))
    return problems


def _check(label: str, index: Any, chain: Any) -> Iterator[str]:
    if index != chain:
        yield f"{label}: index {index!r}, chain {chain!r}"


def _hex(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else _hex(value)


def _token(engine: Engine, history: History) -> list[str]:
    token = history.contract("DimoToken")
    balances = {
        r["account"]: r["balance"] for r in rows(engine, "token_balances") if r["token"] == "DimoToken"
    }
    problems = [
        f"balance of {account}: index {value}, chain {token.functions.balanceOf(account).call()}"
        for account, value in balances.items()
        if token.functions.balanceOf(history.w3.to_checksum_address(account)).call() != value
    ]
    supply = token.functions.totalSupply().call()
    if sum(balances.values()) != supply:
        problems.append(f"indexed balances sum to {sum(balances.values())}, total supply is {supply}")
    return problems


def _roles(engine: Engine, history: History) -> list[str]:
    indexed = {(r["contract"], r["role"], r["account"]) for r in rows(engine, "role_members")}
    problems = []
    for contract, role, account in history.role_candidates | indexed:
        held = (
            history.contract(contract).functions.hasRole(role, history.w3.to_checksum_address(account)).call()
        )
        if held != ((contract, role, account.lower()) in indexed):
            problems.append(f"{contract} role {role} of {account}: chain {held}, index {not held}")
    return problems


def _identity(engine: Engine, history: History) -> Iterator[str]:
    vid = history.contract("VehicleId").functions
    vehicles = {r["vehicle_id"]: r for r in rows(engine, "vehicles")}
    yield from _check(
        "vehicle ids", sorted(vehicles), sorted(set(history.vehicles) | _burned(history, vehicles))
    )
    transfers = history.contract("VehicleId").events.Transfer().get_logs(from_block=0)
    last_transfer = {int(t["args"]["tokenId"]): t["blockNumber"] for t in transfers}
    for vehicle_id, row in vehicles.items():
        try:
            owner = vid.ownerOf(vehicle_id).call().lower()
        except ContractLogicError:
            owner = None
        yield from _check(f"owner of vehicle {vehicle_id}", row["owner"], owner)
        # the tenure began with the vehicle's last Transfer (mint, sale or burn)
        tenure = history.w3.eth.get_block(last_transfer[vehicle_id])["timestamp"]
        yield from _check(f"tenure start of vehicle {vehicle_id}", row["tenure_started_at"], tenure)
        yield from _check(
            f"generation of vehicle {vehicle_id}", row["generation"], vid.generation(vehicle_id).call()
        )
        yield from _check(f"vin of vehicle {vehicle_id}", row["vin_hash"], _hex(vid.vinOf(vehicle_id).call()))
        yield from _check(
            f"connection of {vehicle_id}", row["connection_id"], vid.connectionOf(vehicle_id).call()
        )
    keys = {(r["vehicle_id"], r["grantee"]): r for r in rows(engine, "vehicle_keys")}
    epochs = {(r["vehicle_id"], r["manager"]): r["epoch"] for r in rows(engine, "key_manager_epochs")}
    for vehicle_id in vehicles:
        for account in ACCOUNTS:
            key = keys.get((vehicle_id, account.lower()))
            live = key is not None and key["generation"] == vehicles[vehicle_id]["generation"]
            live = live and not vehicles[vehicle_id]["burned"]
            if live and key["granted_by"] is not None:  # a manager's key: live while its epoch is
                live = epochs.get((vehicle_id, key["granted_by"]), 0) == key["granter_epoch"]
            expected = (key["permissions"], key["expires_at"], key["terms_hash"]) if live else (0, 0, ZERO32)
            chain = tuple(_hex(x) for x in vid.grantOf(vehicle_id, account).call())
            yield from _check(f"key of {account} on {vehicle_id}", expected, chain)
    users = {r["vehicle_id"]: r for r in rows(engine, "vehicle_users")}
    for vehicle_id, vehicle in vehicles.items():
        user = users.get(vehicle_id)
        live = user is not None and user["generation"] == vehicle["generation"]
        yield from _check(
            f"user expiry of {vehicle_id}", user["expires"] if live else 0, vid.userExpires(vehicle_id).call()
        )
        now = history.now()
        expected_user = user["user"] if live and now < user["expires"] else ZERO_ADDRESS
        yield from _check(f"user of {vehicle_id}", expected_user, vid.userOf(vehicle_id).call().lower())
    for row in rows(engine, "connections"):
        name, oracle, active = vid.connection(row["connection_id"]).call()
        yield from _check(
            f"connection {row['connection_id']}",
            (row["name"], row["oracle"], row["active"]),
            (name, oracle.lower(), active),
        )


def _burned(history: History, vehicles: dict[int, Any]) -> set[int]:
    return {v for v, row in vehicles.items() if row["burned"]}


def _devices(engine: Engine, history: History) -> Iterator[str]:
    ad = history.contract("AftermarketDevice").functions
    vehicles = {r["vehicle_id"]: r for r in rows(engine, "vehicles")}
    devices = {r["device_id"]: r for r in rows(engine, "devices")}
    pairings = {r["vehicle_id"]: r for r in rows(engine, "pairings")}
    yield from _check("device ids", sorted(devices), sorted(history.device_ids))

    def live_device(vehicle_id: int) -> int:
        p = pairings.get(vehicle_id)
        if p is None:
            return 0
        device = devices[p["device_id"]]
        ok = device["vehicle_id"] == vehicle_id and device["generation"] == p["device_generation"]
        ok = ok and not device["revoked"]
        return p["device_id"] if ok and vehicles[vehicle_id]["generation"] == p["generation"] else 0

    for device_id, row in devices.items():
        yield from _check(
            f"owner of device {device_id}",
            row["owner"],
            history.contract("AftermarketDevice").functions.ownerOf(device_id).call().lower(),
        )
        yield from _check(
            f"signer of device {device_id}", row["device_signer"], ad.deviceSigner(device_id).call().lower()
        )
        yield from _check(
            f"generation of device {device_id}", row["generation"], ad.deviceGeneration(device_id).call()
        )
        yield from _check(f"revoked device {device_id}", row["revoked"], ad.isDeviceRevoked(device_id).call())
        back = row["vehicle_id"]
        expected = back if back is not None and live_device(back) == device_id else 0
        yield from _check(f"vehicle of device {device_id}", expected, ad.vehicleOfDevice(device_id).call())
    for vehicle_id in vehicles:
        yield from _check(
            f"device of vehicle {vehicle_id}", live_device(vehicle_id), ad.deviceOf(vehicle_id).call()
        )
    allowed = {r["address"]: r["allowed"] for r in rows(engine, "manufacturers")}
    for account in ACCOUNTS:
        yield from _check(
            f"manufacturer {account}", allowed.get(account.lower(), False), ad.isManufacturer(account).call()
        )


def _staking(engine: Engine, history: History) -> Iterator[str]:
    st = history.contract("Staking").functions
    stakes = {r["account"]: r for r in rows(engine, "stakes")}
    whitelist = {(r["account"], r["role"]): r["allowed"] for r in rows(engine, "whitelist")}
    usage = {r["account"]: r for r in rows(engine, "stake_usage")}
    for account in ACCOUNTS:
        row = stakes.get(account.lower())
        expected = (row["active"], row["unbonding"], row["release_at"]) if row else (0, 0, 0)
        yield from _check(f"stake of {account}", expected, tuple(st.stakeOf(account).call()))
        for role in Role:
            yield from _check(
                f"whitelist {account} {role}",
                whitelist.get((account.lower(), role), False),
                st.isWhitelisted(account, role).call(),
            )
        u = usage.get(account.lower())
        yield from _check(
            f"usage of {account}", (u["units"], u["tier"]) if u else (0, 0), tuple(st.usageOf(account).call())
        )
    curves = {r["role"]: (r["base"], r["per_sqrt_unit"]) for r in rows(engine, "staking_curves")}
    for role in Role:
        yield from _check(f"curve {role}", curves.get(role, (0, 0)), tuple(st.curve(role).call()))
    tiers = {r["tier"]: r["bps"] for r in rows(engine, "tier_multipliers")}
    for tier in Tier:
        yield from _check(f"tier {tier}", tiers.get(tier), st.tierMultiplierBps(tier).call())
    params = {(r["contract"], r["name"]): r["value"] for r in rows(engine, "protocol_params")}
    yield from _check(
        "unbonding period", params.get(("Staking", "unbonding_period")), st.unbondingPeriod().call()
    )
    yield from _check("claim window", params.get(("Staking", "claim_window")), st.claimWindow().call())
    yield from _check("dispute window", params.get(("Staking", "dispute_window")), st.disputeWindow().call())
    yield from _check("paused until", params.get(("Staking", "paused_until"), 0), st.pausedUntil().call())
    yield from _check(
        "guardian armed", bool(params.get(("Staking", "guardian_armed"), 1)), st.guardianArmed().call()
    )
    yield from _slash_proposals(engine, history)
    slashes = {r["slash_id"]: r for r in rows(engine, "slashes")}
    for slash_id, row in slashes.items():
        root, remaining, closes_at = st.slashPool(slash_id).call()
        yield from _check(
            f"slash pool {slash_id}",
            (row["impact_root"] if row["to_impacted"] else ZERO32, row["remaining"], row["claim_closes_at"]),
            (_hex(root), remaining, closes_at),
        )
    for row in rows(engine, "slash_claims"):
        yield from _check(
            f"slash claim {row['slash_id']}/{row['index']}",
            True,
            st.isSlashClaimed(row["slash_id"], row["index"]).call(),
        )


def _slash_proposals(engine: Engine, history: History) -> Iterator[str]:
    """Proposals row by row, and each account's freeze: its pending proposal while the chain's
    time is before the proposal's end."""
    st = history.contract("Staking").functions
    proposals = {r["slash_id"]: r for r in rows(engine, "slash_proposals")}
    yield from _check("slash count", len(proposals), st.slashCount().call())
    for slash_id, row in proposals.items():
        account, expires_at, status, subject, amount, subject_id, uri = st.slashProposal(slash_id).call()
        yield from _check(
            f"slash proposal {slash_id}",
            (row["account"], row["expires_at"], row["status"], row["subject"], row["amount"]),
            (account.lower(), expires_at, status, subject, amount),
        )
        yield from _check(
            f"slash proposal {slash_id} names", (row["subject_id"], row["reason_uri"]), (subject_id, uri)
        )
    now = history.w3.eth.get_block("latest")["timestamp"]
    for account in ACCOUNTS:
        live = [
            (r["slash_id"], r["expires_at"])
            for r in proposals.values()
            if r["account"] == account.lower()
            and r["status"] == SlashStatus.PENDING
            and now < r["expires_at"]
        ]
        yield from _check(
            f"freeze of {account}", max(live, default=(0, 0)), tuple(st.freezeOf(account).call())
        )


def _products(engine: Engine, history: History) -> Iterator[str]:
    dp = history.contract("DataProducts").functions
    products = {r["product_id"]: r for r in rows(engine, "products")}
    yield from _check("product count", len(products), dp.productCount().call())
    columns = (
        "price",
        "members_bps",
        "operator_bps",
        "broker_bps",
        "permitted_uses",
        "required_permissions",
        "refresh_seconds",
        "min_cohort",
        "terms_hash",
        "terms_uri",
        "validity_seconds",
    )
    for product_id, row in products.items():
        operator, version, active, terms = dp.product(product_id).call()
        yield from _check(
            f"product {product_id}",
            (row["operator"], row["version"], row["active"], row["kind"]),
            (operator.lower(), version, active, terms[0]),
        )
        yield from _check(
            f"terms of {product_id}", tuple(row[c] for c in columns), tuple(_hex(x) for x in terms[1:])
        )
    components: dict[int, list[tuple[int, int]]] = {}
    for r in sorted(rows(engine, "bundle_components"), key=lambda r: r["position"]):
        components.setdefault(r["bundle_id"], []).append((r["component_id"], r["monthly_quantity"]))
    for bundle_id, parts in components.items():
        ids, quantities = dp.components(bundle_id).call()
        yield from _check(f"bundle {bundle_id}", parts, list(zip(ids, quantities, strict=True)))
    vehicles = {r["vehicle_id"]: r for r in rows(engine, "vehicles")}
    memberships = {(r["product_id"], r["vehicle_id"]): r for r in rows(engine, "memberships")}
    for product_id, product in products.items():
        for vehicle_id, vehicle in vehicles.items():
            m = memberships.get((product_id, vehicle_id))
            live = (
                m is not None
                and m["version"] == product["version"]
                and m["generation"] == vehicle["generation"]
            )
            yield from _check(
                f"member {vehicle_id} of {product_id}", live, dp.isMember(product_id, vehicle_id).call()
            )
            yield from _check(
                f"consent {vehicle_id} of {product_id}",
                (m["version"], m["generation"]) if m else (0, 0),
                tuple(dp.consentOf(product_id, vehicle_id).call()),
            )
        count = sum(
            1 for (p, _), m in memberships.items() if p == product_id and m["version"] == product["version"]
        )
        yield from _check(f"member count of {product_id}", count, dp.memberCount(product_id).call())
    for row in rows(engine, "demand_signals"):
        account, spec, budget, open_ = dp.demand(row["signal_id"]).call()
        yield from _check(
            f"demand {row['signal_id']}",
            (row["account"], row["spec_hash"], row["budget"], not row["withdrawn"]),
            (account.lower(), _hex(spec), budget, open_),
        )
    params = {(r["contract"], r["name"]): r["value"] for r in rows(engine, "protocol_params")}
    yield from _check(
        "protocol fee", params.get(("DataProducts", "protocol_fee_bps")), dp.protocolFeeBps().call()
    )


def _market(engine: Engine, history: History) -> Iterator[str]:
    mk = history.contract("Marketplace").functions
    orders = {r["order_id"]: r for r in rows(engine, "orders")}
    yield from _check("order count", len(orders), mk.orderCount().call())
    for order_id, row in orders.items():
        chain = tuple(_lower(x) for x in mk.order(order_id).call())
        index = (
            row["product_id"],
            row["buyer"],
            row["broker"],
            row["quantity"],
            row["paid"],
            row["starts_at"],
            row["ends_at"],
            row["use"],
        )
        yield from _check(f"order {order_id}", index, chain)
        yield from _check(f"order {order_id} in force", row["in_force"], mk.inForce(order_id).call())
        yield from _check(
            f"order {order_id} spec", row["spec_hash"] or ZERO32, _hex(mk.datasetSpec(order_id).call())
        )
    stewards = {r["broker"]: r["steward"] for r in rows(engine, "stewards")}
    earnings = {r["account"]: r["claimable"] for r in rows(engine, "earnings")}
    for account in ACCOUNTS:
        yield from _check(
            f"steward {account}", stewards.get(account.lower(), False), mk.isSteward(account).call()
        )
        yield from _check(
            f"earnings {account}", earnings.get(account.lower(), 0), mk.claimable(account).call()
        )
    yield from _vesting(engine, history, orders)
    yield from _roots(engine, history)


def _vesting(engine: Engine, history: History, orders: dict[int, Any]) -> Iterator[str]:
    """Each order's vesting, delivery and refund; each product's take by accepted roots."""
    mk = history.contract("Marketplace").functions
    for order_id, row in orders.items():
        share, starts, ends, refunded_at, version = mk.orderVesting(order_id).call()
        yield from _check(
            f"order {order_id} vesting",
            (row["member_share"], row["vest_starts_at"], row["vest_ends_at"], row["refunded_at"] or 0),
            (share, starts, ends, refunded_at),
        )
        yield from _check(f"order {order_id} terms version", row["terms_version"], version)
        if row["delivered_at"] is not None:
            yield from _check(
                f"order {order_id} delivered",
                (row["vest_starts_at"], row["vest_ends_at"]),
                (row["delivered_at"],) * 2,
            )
    taken = {r["product_id"]: r["taken"] for r in rows(engine, "product_taken")}
    for product_id in {r["product_id"] for r in rows(engine, "products")}:
        yield from _check(
            f"taken of {product_id}", taken.get(product_id, 0), mk.takenMemberAmount(product_id).call()
        )
        yield from _check(
            f"taken of {product_id} within vested",
            True,
            taken.get(product_id, 0) <= mk.vestedMemberAmount(product_id).call(),
        )


def _roots(engine: Engine, history: History) -> Iterator[str]:
    """THE root (the last accepted), the pending one, the delay, totals and per-account claims."""
    mk = history.contract("Marketplace").functions
    roots = rows(engine, "market_roots")
    accepted = sorted((r for r in roots if r["status"] == "accepted"), key=lambda r: r["block_number"])
    yield from _check("root", accepted[-1]["root"] if accepted else ZERO32, _hex(mk.root().call()))
    yield from _check("total taken", accepted[-1]["total_taken"] if accepted else 0, mk.totalTaken().call())
    pending = [r for r in roots if r["status"] == "pending"]
    root, claimable_at, _takes = mk.pendingRoot().call()
    yield from _check(
        "pending root",
        (pending[0]["root"], pending[0]["claimable_at"]) if pending else (ZERO32, 0),
        (_hex(root), claimable_at),
    )
    yield from _check("one pending root at most", len(pending) <= 1, True)
    params = {(r["contract"], r["name"]): r["value"] for r in rows(engine, "protocol_params")}
    # the default delay (no RootDelaySet yet) is the contract's constant
    delay = params.get(("Marketplace", "root_delay"), DEFAULT_ROOT_DELAY)
    yield from _check("root delay", delay, mk.rootDelay().call())
    claimed = {r["account"]: r["claimed"] for r in rows(engine, "member_claims")}
    paid = sum(r["amount"] for r in rows(engine, "claims"))
    yield from _check("total claimed", paid, mk.totalClaimed().call())
    for account in ACCOUNTS:
        yield from _check(
            f"claimed by {account}", claimed.get(account.lower(), 0), mk.claimed(account).call()
        )
