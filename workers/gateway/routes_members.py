"""Members' payouts: everything an address is owed, every product together, under the
accepted cumulative root, with what `Marketplace.claim(account, cumulative, proof)` takes —
public, as the Merkle leaves are (SPEC15 §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from workers.gateway.deps import read_session, state_of
from workers.gateway.problems import problem_responses
from workers.ledger import member_claim

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
def claims(request: Request, address: Annotated[str, Path(pattern="^0x[0-9a-fA-F]{40}$")]) -> ClaimView:
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
