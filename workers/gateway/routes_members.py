"""Members' payouts: the settled epochs an address can still claim, with what
`Marketplace.claim` takes (index, amount, proof) — public, as the Merkle leaves are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from workers.gateway.deps import read_session, state_of
from workers.gateway.problems import problem_responses
from workers.ledger import unclaimed_claims

router = APIRouter(tags=["members"])


class ClaimView(BaseModel):
    product_id: int
    epoch: int
    index: int
    account: str
    amount: str
    proof: list[str]
    root: str


class ClaimsView(BaseModel):
    address: str
    claims: list[ClaimView]


@router.get("/v1/members/{address}/claims", response_model=ClaimsView, responses=problem_responses(422))
def claims(request: Request, address: Annotated[str, Path(pattern="^0x[0-9a-fA-F]{40}$")]) -> ClaimsView:
    """Unclaimed epochs of `address`, oldest first: settled on chain with the root the workers
    computed, not claimed yet; each with the leaf's index, amount (base units, decimal) and
    Merkle proof, ready for `Marketplace.claim(productId, epoch, index, account, amount, proof)`."""
    with read_session(state_of(request)) as session:
        found = unclaimed_claims(session, address)
    return ClaimsView(
        address=address,
        claims=[
            ClaimView(
                product_id=int(c["product_id"]),
                epoch=int(c["epoch"]),
                index=int(c["index"]),
                account=str(c["account"]),
                amount=str(c["amount"]),
                proof=list(c["proof"]),
                root=str(c["root"]),
            )
            for c in found
        ],
    )
