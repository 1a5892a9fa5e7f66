"""Staking: stakes (active, unbonding, release time), whitelist, curves, tier multipliers,
buyers' usage, slash proposals (the freezes they hold), slashes with their impact pools and
claims, parameters."""

from __future__ import annotations

from typing import Any

from workers.indexer.decode import Event
from workers.indexer.handlers import on
from workers.indexer.store import Store
from workers.protocol import SlashStatus


def _stake(s: Store, account: str) -> dict[str, Any]:
    return s.get("stakes", account) or {"account": account, "active": 0, "unbonding": 0, "release_at": 0}


def _put_stake(s: Store, ev: Event, row: dict[str, Any]) -> None:
    row["block_number"] = ev.block_number
    s.put("stakes", row)


@on("Staking", "Staked")
def staked(ev: Event, s: Store) -> None:
    row = _stake(s, ev.args["account"])
    row["active"] += ev.args["amount"]
    _put_stake(s, ev, row)


@on("Staking", "UnstakeRequested")
def unstake_requested(ev: Event, s: Store) -> None:
    row = _stake(s, ev.args["account"])
    row["active"] -= ev.args["amount"]
    row["unbonding"] += ev.args["amount"]
    row["release_at"] = ev.args["releaseAt"]
    _put_stake(s, ev, row)


@on("Staking", "Withdrawn")
def withdrawn(ev: Event, s: Store) -> None:
    row = _stake(s, ev.args["account"])
    row.update(unbonding=0, release_at=0)  # withdraw releases all matured unbonding stake
    _put_stake(s, ev, row)


@on("Staking", "SlashApplied")
def slash_applied(ev: Event, s: Store) -> None:
    row = _stake(s, ev.args["account"])
    row["active"] -= ev.args["fromActive"]
    row["unbonding"] -= ev.args["fromUnbonding"]
    _put_stake(s, ev, row)
    s.put(
        "slashes",
        {
            "slash_id": ev.args["slashId"],
            "account": ev.args["account"],
            "amount": ev.args["fromActive"] + ev.args["fromUnbonding"],
            "to_impacted": 0,
            "impact_root": "0x" + "00" * 32,
            "reason": "",
            "from_active": ev.args["fromActive"],
            "from_unbonding": ev.args["fromUnbonding"],
            "claim_closes_at": ev.args["claimClosesAt"],
            "remaining": 0,
            "swept": False,
            "tx_hash": ev.tx_hash,
            "block_number": ev.block_number,
        },
    )


@on("Staking", "SlashProposed")
def slash_proposed(ev: Event, s: Store) -> None:
    """A proposal freezes its account's stake until executed, cancelled or `expiresAt`."""
    s.put(
        "slash_proposals",
        {
            "slash_id": ev.args["slashId"],
            "account": ev.args["account"],
            "amount": ev.args["amount"],
            "subject": ev.args["subject"],
            "subject_id": ev.args["subjectId"],
            "reason_uri": ev.args["reasonURI"],
            "expires_at": ev.args["expiresAt"],
            "status": int(SlashStatus.PENDING),
            "tx_hash": ev.tx_hash,
            "block_number": ev.block_number,
        },
    )


@on("Staking", "SlashCancelled")
def slash_cancelled(ev: Event, s: Store) -> None:
    s.update(
        "slash_proposals",
        (ev.args["slashId"],),
        status=int(SlashStatus.CANCELLED),
        block_number=ev.block_number,
    )


@on("Staking", "Slashed")
def slashed(ev: Event, s: Store) -> None:
    row = s.get("slashes", ev.args["slashId"]) or {
        "slash_id": ev.args["slashId"],
        "from_active": None,
        "from_unbonding": None,
        "claim_closes_at": None,
        "swept": False,
    }
    row.update(
        account=ev.args["account"],
        amount=ev.args["amount"],
        to_impacted=ev.args["toImpacted"],
        impact_root=ev.args["impactRoot"],
        reason=ev.args["reason"],
        remaining=ev.args["toImpacted"],
        tx_hash=ev.tx_hash,
        block_number=ev.block_number,
    )
    s.put("slashes", row)
    # Every slash executes a proposal: executing it ends the freeze.
    s.update(
        "slash_proposals",
        (ev.args["slashId"],),
        status=int(SlashStatus.EXECUTED),
        block_number=ev.block_number,
    )


@on("Staking", "SlashClaimed")
def slash_claimed(ev: Event, s: Store) -> None:
    s.put(
        "slash_claims",
        {
            "slash_id": ev.args["slashId"],
            "index": ev.args["index"],
            "account": ev.args["account"],
            "amount": ev.args["amount"],
            "block_number": ev.block_number,
        },
    )
    pool = s.get("slashes", ev.args["slashId"])
    if pool is not None:
        s.update("slashes", (ev.args["slashId"],), remaining=(pool["remaining"] or 0) - ev.args["amount"])


@on("Staking", "SlashSwept")
def slash_swept(ev: Event, s: Store) -> None:
    s.update("slashes", (ev.args["slashId"],), remaining=0, swept=True)


@on("Staking", "Whitelisted")
def whitelisted(ev: Event, s: Store) -> None:
    s.put(
        "whitelist",
        {
            "account": ev.args["account"],
            "role": ev.args["role"],
            "allowed": ev.args["allowed"],
            "block_number": ev.block_number,
        },
    )


@on("Staking", "CurveSet")
def curve_set(ev: Event, s: Store) -> None:
    s.put(
        "staking_curves",
        {
            "role": ev.args["role"],
            "base": ev.args["base"],
            "per_sqrt_unit": ev.args["perSqrtUnit"],
            "block_number": ev.block_number,
        },
    )


@on("Staking", "TierMultiplierSet")
def tier_multiplier_set(ev: Event, s: Store) -> None:
    s.put(
        "tier_multipliers", {"tier": ev.args["tier"], "bps": ev.args["bps"], "block_number": ev.block_number}
    )


@on("Staking", "UsageSet")
def usage_set(ev: Event, s: Store) -> None:
    s.put(
        "stake_usage",
        {
            "account": ev.args["account"],
            "units": ev.args["units"],
            "tier": ev.args["tier"],
            "block_number": ev.block_number,
        },
    )


def _param(s: Store, ev: Event, name: str, value: int) -> None:
    s.put(
        "protocol_params",
        {"contract": ev.contract, "name": name, "value": value, "block_number": ev.block_number},
    )


@on("Staking", "UnbondingPeriodSet")
def unbonding_period_set(ev: Event, s: Store) -> None:
    _param(s, ev, "unbonding_period", ev.args["period"])


@on("Staking", "ClaimWindowSet")
def claim_window_set(ev: Event, s: Store) -> None:
    _param(s, ev, "claim_window", ev.args["window"])


@on("Staking", "DisputeWindowSet")
def dispute_window_set(ev: Event, s: Store) -> None:
    _param(s, ev, "dispute_window", ev.args["window"])
