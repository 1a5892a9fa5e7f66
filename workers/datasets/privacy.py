"""Differentially private dataset releases (OpenDP) and each order's privacy budget.

Two datasets are neighbours when one vehicle is added or removed; each vehicle contributes
one value (its latest of the metric), clamped to the metric's bounds (the VSS catalogue's
range, or narrower bounds the buyer declares). Per published group, two OpenDP measurements:

- `vehicles`: the count, through the discrete Laplace mechanism (sensitivity 1);
- the sum of the values less the lower bound, clamped to [0, upper - lower], through the
  Laplace mechanism (sensitivity the bounds' width, as OpenDP computes it with float rounding).

The released mean is post-processing of the two (lower + noisy shifted sum / noisy count,
clamped to the bounds), so it costs nothing more; its noise scale is the sum's scale over the
released count. Groups partition the vehicles (one vehicle is in one group), so a build
costs its epsilon once whatever the number of groups (parallel composition). The build's
epsilon is split evenly between count and sum; what each costs is OpenDP's own `map(1)`.

The budget: every Dataset (or bundle) order has a row in `gateway_dataset_budgets`, created
at its first job with DATASET_EPSILON_PER_ORDER; queueing a job spends its epsilon by one
conditional UPDATE (`spent + epsilon <= total`), so concurrent jobs never overspend and a job
past the budget is refused (`privacy_budget_exhausted`). What the group keys and the
minCohort suppression reveal is decided on exact counts (docs/security.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import opendp.prelude as dp
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from workers.db import upsert
from workers.db.gateway import DatasetPrivacyBudget
from workers.signals.catalogue import CATALOGUE, ValueType

dp.enable_features("contrib")

#: Float slack when comparing spent epsilon with the budget (sums of decimal fractions).
EPSILON_SLACK = 1e-9
#: Largest magnitude of a bound (beyond it the noise scale overflows OpenDP's search).
MAX_BOUND = 1e12

_INPUT = (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance())


def metric_bounds(metric: str, declared: tuple[float, float] | None) -> tuple[float, float]:
    """The clamp of `metric`'s values: `declared` (inside the catalogue's range), else the
    catalogue's range (0..1 for a boolean). ValueError when there is none or it is empty."""
    spec = CATALOGUE.get(metric)
    if spec is not None and spec.type is ValueType.BOOL:
        low, high = 0.0, 1.0
    elif spec is not None:
        low, high = spec.minimum, spec.maximum
    else:
        low, high = -math.inf, math.inf
    if declared is not None:
        if not (low <= declared[0] < declared[1] <= high):
            raise ValueError(f"bounds {list(declared)} must be increasing and within [{low}, {high}]")
        low, high = declared
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{metric} has no catalogued range: declare its bounds")
    if max(abs(low), abs(high)) > MAX_BOUND:
        raise ValueError(f"bounds must lie within ±{MAX_BOUND:g}")
    return float(low), float(high)


@dataclass(frozen=True)
class Released:
    """One group's differentially private values."""

    vehicles: int
    mean: float
    #: The Laplace scale of the mean's noise: the sum's scale over the released count.
    mean_scale: float


class Mechanism:
    """The measurements of one build: bounds and epsilon fixed, applied to each group."""

    def __init__(self, bounds: tuple[float, float], epsilon: float) -> None:
        if not epsilon > 0:
            raise ValueError("epsilon must be positive")
        self.bounds = bounds
        width = bounds[1] - bounds[0]
        share = epsilon / 2
        self.count_scale = float(dp.binary_search_param(self._count, d_in=1, d_out=share))
        self.sum_scale = float(dp.binary_search_param(lambda s: self._sum(width, s), d_in=1, d_out=share))
        self._count_meas = self._count(self.count_scale)
        self._sum_meas = self._sum(width, self.sum_scale)
        self.count_epsilon = float(self._count_meas.map(1))
        self.sum_epsilon = float(self._sum_meas.map(1))
        #: What one build costs: both measurements on one neighbouring step (≤ `epsilon`).
        self.epsilon = self.count_epsilon + self.sum_epsilon

    @staticmethod
    def _count(scale: float) -> Any:
        return _INPUT >> dp.t.then_count() >> dp.m.then_laplace(scale)

    @staticmethod
    def _sum(width: float, scale: float) -> Any:
        return _INPUT >> dp.t.then_clamp((0.0, width)) >> dp.t.then_sum() >> dp.m.then_laplace(scale)

    def release(self, values: Sequence[float]) -> Released:
        """The group's noisy count and mean (OpenDP samples the noise)."""
        shifted = [float(v) - self.bounds[0] for v in values]
        vehicles = max(0, int(self._count_meas(shifted)))
        noisy_sum = float(self._sum_meas(shifted))
        divisor = max(vehicles, 1)
        mean = min(max(self.bounds[0] + noisy_sum / divisor, self.bounds[0]), self.bounds[1])
        return Released(vehicles, mean, self.sum_scale / divisor)

    def describe(self) -> dict[str, Any]:
        """The answer's statement of its privacy: epsilon and noise scale per released value."""
        return {
            "epsilon": self.epsilon,
            "neighbouring": "one vehicle added or removed",
            "bounds": list(self.bounds),
            "vehicles": {
                "mechanism": "discrete_laplace",
                "epsilon": self.count_epsilon,
                "scale": self.count_scale,
            },
            "mean": {
                "mechanism": "laplace",
                "epsilon": self.sum_epsilon,
                "sum_scale": self.sum_scale,
                "scale": "per row: mean_scale = sum_scale / vehicles",
            },
        }


@lru_cache(maxsize=64)
def mechanism_for(bounds: tuple[float, float], epsilon: float) -> Mechanism:
    """The build's Mechanism, built once per process for each (bounds, epsilon): choosing its
    scales is a search of a few hundred milliseconds, which a build would otherwise spend
    inside its write transaction. The noise is sampled afresh on every release."""
    return Mechanism(bounds, epsilon)


@dataclass(frozen=True)
class Budget:
    epsilon_total: float
    epsilon_spent: float

    @property
    def epsilon_remaining(self) -> float:
        return max(0.0, self.epsilon_total - self.epsilon_spent)


_B = DatasetPrivacyBudget
_SPEND = (
    update(_B)
    .where(_B.order_id == bindparam("o"))
    .where(_B.epsilon_spent + bindparam("e") <= _B.epsilon_total + EPSILON_SLACK)
    .values(epsilon_spent=_B.epsilon_spent + bindparam("e"), updated_at=bindparam("t"))
    .returning(_B.epsilon_total, _B.epsilon_spent)
)


def _ensure(session: Session, order_id: int, total: float, now: int) -> None:
    session.execute(
        upsert(session, DatasetPrivacyBudget),
        {"order_id": order_id, "epsilon_total": total, "epsilon_spent": 0.0, "updated_at": now},
    )


def spend(session: Session, order_id: int, epsilon: float, *, total: float, now: int) -> Budget | None:
    """Takes `epsilon` from the order's budget (created with `total` on first use); the
    budget after it, or None (nothing taken) when it would exceed the budget."""
    _ensure(session, order_id, total, now)
    row = session.connection().execute(_SPEND, {"o": order_id, "e": epsilon, "t": now}).first()
    return None if row is None else Budget(float(row[0]), float(row[1]))


def budget_of(session: Session, order_id: int, *, total: float) -> Budget:
    """The order's budget as it stands (`total` unspent when it has none yet)."""
    row = session.get(DatasetPrivacyBudget, order_id)
    return Budget(total, 0.0) if row is None else Budget(row.epsilon_total, row.epsilon_spent)
