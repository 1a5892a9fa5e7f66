"""DataProducts terms (DESIGN.md §3.5) as the ABI tuple that `createProduct`, `createBundle`
and `updateTerms` take: the one place that knows the struct's field order, for the demo story,
the benchmarks and the tests."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from workers.protocol.constants import DEFAULT_CREDIT_VALIDITY
from workers.protocol.enums import Kind, Use, uses_mask
from workers.protocol.permissions import LOCATION, TELEMETRY

#: IDataProducts.Terms, in the struct's order.
FIELDS = (
    "kind",
    "price",
    "membersBps",
    "operatorBps",
    "brokerBps",
    "permittedUses",
    "requiredPermissions",
    "refreshSeconds",
    "minCohort",
    "termsHash",
    "termsURI",
    "validitySeconds",
)


def terms(kind: int, price: int, **fields: Any) -> tuple:
    """IDataProducts.Terms as an ABI tuple; `fields` override by Solidity name. Unnamed: 70% to
    members, 20% operator, 5% broker (the deployment's protocol fee is the other 5%), insurance
    permitted, telemetry and location required, 60 s refresh, a cohort of 1 for datasets and
    bundles (0 otherwise), a terms hash and URI derived from kind and price, and credits valid
    for DEFAULT_CREDIT_VALIDITY (Api; validitySeconds is 0 for every other kind)."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"not a Terms field: {', '.join(sorted(unknown))}")
    values = {
        "kind": kind,
        "price": price,
        "membersBps": 7_000,
        "operatorBps": 2_000,
        "brokerBps": 500,
        "permittedUses": uses_mask(Use.INSURANCE),
        "requiredPermissions": TELEMETRY | LOCATION,
        "refreshSeconds": 60,
        "minCohort": 1 if kind in (Kind.DATASET, Kind.BUNDLE) else 0,
        "termsHash": keccak(text=f"terms {kind} {price}"),
        "termsURI": f"ipfs://terms/{kind}/{price}",
        "validitySeconds": DEFAULT_CREDIT_VALIDITY if kind == Kind.API else 0,
        **fields,
    }
    return tuple(values[name] for name in FIELDS)
