"""Members' payouts: everything an address is owed, every product together, under the
accepted cumulative root, with what `Marketplace.claim(account, cumulative, proof)` takes —
public, as the Merkle leaves are (SPEC15 §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from workers.gateway.deps import AddressPath, read_session, state_of
from workers.gateway.problems import problem_responses
from workers.ledger import member_claim
from workers.ledger.earnings import member_earnings

router = APIRouter(tags=["members"])


class ClaimView(BaseModel):
    """The account's leaf of the accepted root, amounts in base units (decimal strings)."""

    address: str
    #: The leaf's account, as the tree holds it.
    account: str
    #: What the account has been owed in total, all products and periods (the leaf's amount).
    cumulative: str
    #: What it has been paid so far (Marketplace.claimed, as indexed).
    claimed: str
    #: What one claim pays now: cumulative - claimed.
    claimable: str
    proof: list[str]
    #: The accepted root the proof is against (None: the account is in no accepted root yet).
    root: str | None


@router.get("/v1/members/{address}/claims", response_model=ClaimView, responses=problem_responses(422))
def claims(request: Request, address: AddressPath) -> ClaimView:
    """Everything `address` is owed under the accepted root, ready for one
    `Marketplace.claim(account, cumulative, proof)` that pays `claimable` (anyone may send it;
    the money goes to the account). Zeros and no root while nothing is owed."""
    with read_session(state_of(request)) as session:
        found = member_claim(session, address)
    if found is None:
        return ClaimView(
            address=address,
            account=address.lower(),
            cumulative="0",
            claimed="0",
            claimable="0",
            proof=[],
            root=None,
        )
    return ClaimView(
        address=address,
        account=str(found["account"]),
        cumulative=str(found["cumulative"]),
        claimed=str(found["claimed"]),
        claimable=str(found["claimable"]),
        proof=[str(p) for p in found["proof"]],
        root=None if found.get("root") is None else str(found["root"]),
    )


class PeriodEarningView(BaseModel):
    product_id: int
    #: The settlement period (UTC epoch seconds // EPOCH_SECONDS) and when it started.
    period: int
    starts_at: int
    #: The account's share of the period, base units (decimal string).
    amount: str


class EarningsView(BaseModel):
    address: str
    period_seconds: int
    earnings: list[PeriodEarningView]


@router.get("/v1/members/{address}/earnings", response_model=EarningsView, responses=problem_responses(422))
def earnings(
    request: Request,
    address: AddressPath,
    periods: Annotated[int, Query(ge=1, le=400)] = 90,
) -> EarningsView:
    """What `address` earned from each product it is (or was) a member of, per closed
    settlement period, the last `periods` of each product, zeros included — the share rule
    replayed over the stored periods; public, as the claims are."""
    state = state_of(request)
    seconds = state.settings.epoch_seconds
    with read_session(state) as session:
        found = member_earnings(session, address, seconds, periods)
    return EarningsView(
        address=address,
        period_seconds=seconds,
        earnings=[
            PeriodEarningView(
                product_id=e.product_id, period=e.period, starts_at=e.period * seconds, amount=str(e.amount)
            )
            for e in found
        ],
    )
