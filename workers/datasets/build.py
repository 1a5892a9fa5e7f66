"""Building one dataset: the member vehicles the order may aggregate (the access rule for
each), grouped by a profile field, the metric's latest value aggregated per group and
released through differential privacy (workers/datasets/privacy.py: noisy count and mean,
never a single vehicle's value); groups below the minCohort are suppressed and the whole
answer is refused when the cohort is (the minCohort of the order's terms: for a bundle order,
the larger of the bundle's and the component's). Each contributing vehicle is counted as one
row for its member's share."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from workers.access import (
    Decision,
    Entitlement,
    Purpose,
    cohort_decision,
    may_read,
    may_use_order,
    window_start,
)
from workers.access.facts import FactsCache, IndexedFacts, StakingCheck, matching_members, member_profiles
from workers.datasets.privacy import Mechanism, mechanism_for, metric_bounds
from workers.db.gateway import DatasetJob, VehicleProfile
from workers.ledger import UsageKind, period_of, record_usage
from workers.signals import store
from workers.signals.catalogue import signal_bit

#: Profile fields a dataset can be grouped or filtered by.
PROFILE_FIELDS = ("make", "model", "powertrain", "region")


class DatasetRequest(BaseModel):
    """POST /v1/orders/{orderId}/dataset body."""

    metric: str = Field(
        description="A VSS signal name, e.g. Vehicle.Powertrain.TractionBattery.StateOfHealth"
    )
    group_by: str | None = Field(default=None, pattern="^(make|model|powertrain|region)$")
    filter: dict[Literal["make", "model", "powertrain", "region"], Annotated[str, Field(max_length=64)]] = (
        Field(default_factory=dict, description="Profile fields to match exactly")
    )
    product_id: int | None = Field(
        default=None, ge=0, description="For a bundle order: which Dataset component"
    )
    bounds: tuple[float, float] | None = Field(
        default=None,
        description="[lower, upper] the values are clamped to before the noisy sum: within the "
        "signal's catalogued range (the default); narrower bounds mean less noise",
    )

    @model_validator(mode="after")
    def _bounded(self) -> DatasetRequest:
        metric_bounds(self.metric, self.bounds)
        return self

    def clamp(self) -> tuple[float, float]:
        return metric_bounds(self.metric, self.bounds)


@dataclass
class Cohort:
    vehicles: list[int]
    profiles: dict[int, VehicleProfile] = field(default_factory=dict)
    #: Per vehicle: the earliest observation (unix ms) the rule lets this order aggregate.
    since_ms: dict[int, int] = field(default_factory=dict)


def _matches(profile: VehicleProfile | None, wanted: dict[str, str]) -> bool:
    if not wanted:
        return True
    if profile is None:
        return False
    return all((getattr(profile, k) or "").lower() == v.lower() for k, v in wanted.items())


def cohort(
    session: Session, facts: IndexedFacts, buyer: str, ent: Entitlement, request: DatasetRequest
) -> Cohort:
    """Member vehicles the rule lets this order aggregate, that match the filter, with the
    window each may be read in."""
    mask = signal_bit(request.metric)
    members = facts.members(ent.consent_id)
    profiles = member_profiles(session, ent.consent_id) if members else {}
    since_ms: dict[int, int] = {}
    for v in members:
        if not _matches(profiles.get(v), request.filter) or not may_read(
            facts, buyer, ent.product_id, v, mask, purpose=Purpose.DATASET, order_id=ent.order.order_id
        ):
            continue
        since = window_start(facts, ent, v)
        if since is not None:
            since_ms[v] = since * 1000
    return Cohort(list(since_ms), profiles, since_ms)


def has_cohort(
    session: Session, facts: IndexedFacts, buyer: str, ent: Entitlement, request: DatasetRequest
) -> bool:
    """Whether at least the terms' minCohort member vehicles qualify as `cohort` would count
    them: matching members are read in id order only until that many pass the rule (queueing a
    job needs no more, whatever the number of members)."""
    needed = max(1, ent.terms.min_cohort)
    mask = signal_bit(request.metric)
    found = 0
    members = session.scalars(
        matching_members(ent.consent_id, request.filter).execution_options(yield_per=500)
    )
    for v in members:
        if (
            may_read(
                facts, buyer, ent.product_id, v, mask, purpose=Purpose.DATASET, order_id=ent.order.order_id
            )
            and window_start(facts, ent, v) is not None
        ):
            found += 1
            if found >= needed:
                members.close()
                return True
    return False


def enough_vehicles(ent: Entitlement, vehicles: int) -> Decision:
    """The rule's cohort check (cohort_decision) under the entitlement's terms, its refusal
    stating the minimum and never the exact count (which would be a non-private release)."""
    enough = cohort_decision(ent, vehicles)
    if enough:
        return enough
    return Decision(
        False,
        enough.reason,
        f"fewer member vehicles match than the minCohort {ent.terms.min_cohort} of order "
        f"{ent.order.order_id}'s terms for product {ent.product_id}",
    )


def choose_entitlement(decision: Decision, product_id: int | None) -> Entitlement | None:
    for ent in decision.entitlements:
        if product_id is None or ent.product_id == product_id:
            return ent
    return None


def _group_key(group: Cohort, vehicle_id: int, group_by: str | None) -> str:
    if not group_by:
        return "all"
    profile = group.profiles.get(vehicle_id)
    return (getattr(profile, group_by) if profile else None) or "unknown"


def aggregate(
    session: Session, group: Cohort, request: DatasetRequest, min_cohort: int, mechanism: Mechanism
) -> tuple[dict[str, Any], list[int]]:
    """Per group: the noisy count of vehicles and noisy mean of the metric's latest value
    (`mechanism`). Groups with fewer than `min_cohort` vehicles with a value are suppressed.
    Returns the result and the vehicles that contributed to a published row."""
    members: dict[str, list[tuple[int, float]]] = {}
    for vehicle_id in group.vehicles:
        found = store.latest(session, vehicle_id, [request.metric], since_ms=group.since_ms[vehicle_id])
        if not found or isinstance(found[0].value, str):
            continue
        key = _group_key(group, vehicle_id, request.group_by)
        members.setdefault(key, []).append((vehicle_id, float(found[0].value)))
    rows: list[list[Any]] = []
    contributors: list[int] = []
    for key in sorted(members):
        entries = members[key]
        if len(entries) < max(1, min_cohort):
            continue
        released = mechanism.release([value for _, value in entries])
        rows.append([key, released.vehicles, released.mean, released.mean_scale])
        contributors += [vehicle_id for vehicle_id, _ in entries]
    result = {
        "metric": request.metric,
        "group_by": request.group_by or "all",
        "columns": [request.group_by or "group", "vehicles", "mean", "mean_scale"],
        "rows": rows,
        "privacy": mechanism.describe(),
    }
    return result, contributors


def _record_rows(
    session: Session,
    job: DatasetJob,
    ent: Entitlement,
    facts: IndexedFacts,
    *,
    vehicles: list[int],
    epoch_seconds: int,
) -> None:
    period = period_of(facts.now(), epoch_seconds)
    for vehicle_id in vehicles:
        record_usage(
            session,
            UsageKind.DATASET,
            product_id=ent.consent_id,
            order_id=ent.order.order_id,
            vehicle_id=vehicle_id,
            owner=facts.vehicle_owner(vehicle_id),
            period=period,
        )


def _finish(job: DatasetJob, status: str, reason: str | None = None, detail: str | None = None) -> None:
    job.status = status
    job.reason = reason
    job.detail = detail
    job.finished_at = int(time.time())


def build(
    session: Session,
    job_id: str,
    staking_check: StakingCheck,
    epoch_seconds: int,
    clock: Callable[[], float] = time.time,
) -> str:
    """Computes job `job_id` in `session`'s transaction; returns its final status. Idempotent:
    a finished job is left as it is."""
    job = session.get(DatasetJob, job_id)
    if job is None:
        return "missing"
    if job.status in ("done", "refused"):
        return job.status
    job.status = "running"
    request = DatasetRequest.model_validate_json(job.request)
    facts = IndexedFacts(session, FactsCache(0.0), staking_check, clock=clock)
    decision = may_use_order(facts, job.buyer, job.order_id, Purpose.DATASET)
    ent = choose_entitlement(decision, job.product_id) if decision else None
    if ent is None:
        _finish(
            job,
            "refused",
            decision.reason or "wrong_kind",
            decision.detail or "the order opens no such dataset",
        )
        return job.status
    group = cohort(session, facts, job.buyer, ent, request)
    enough = enough_vehicles(ent, len(group.vehicles))
    if not enough:
        _finish(job, "refused", enough.reason, enough.detail)
        job.cohort = len(group.vehicles)
        return job.status
    mechanism = mechanism_for(request.clamp(), job.epsilon)
    result, contributors = aggregate(session, group, request, ent.terms.min_cohort, mechanism)
    enough = enough_vehicles(ent, len(contributors))
    if not enough:
        _finish(job, "refused", enough.reason, enough.detail)
        job.cohort = len(contributors)
        return job.status
    _record_rows(session, job, ent, facts, vehicles=contributors, epoch_seconds=epoch_seconds)
    job.result = json.dumps(result)
    job.cohort = len(contributors)
    _finish(job, "done")
    return job.status
