"""The claims read model: what a member can claim under the accepted cumulative root, as the
gateway serves it (`GET /v1/members/{address}/claims`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workers.db.projections import MarketRoot, MemberClaim
from workers.db.settlement import SettlementRoot, SettlementRootLeaf


def member_claim(session: Session, account: str) -> dict[str, Any] | None:
    """`account`'s leaf under THE root (the last one the indexer saw accepted on chain, as the
    workers computed it): {account, cumulative, claimed, claimable, proof, root}, what
    `Marketplace.claim(account, cumulative, proof)` takes; None when no accepted root has a
    leaf for it."""
    address = account.lower()
    accepted = session.scalar(
        select(MarketRoot.root)
        .where(MarketRoot.status == "accepted")
        .order_by(MarketRoot.block_number.desc())
        .limit(1)
    )
    if accepted is None:
        return None
    leaf = session.execute(
        select(SettlementRootLeaf.cumulative, SettlementRootLeaf.proof)
        .join(SettlementRoot, SettlementRoot.id == SettlementRootLeaf.root_id)
        .where(SettlementRoot.root == accepted, SettlementRootLeaf.account == address)
        .order_by(SettlementRoot.id.desc())
        .limit(1)
    ).first()
    if leaf is None:
        return None
    claimed = session.scalar(select(MemberClaim.claimed).where(MemberClaim.account == address)) or 0
    cumulative = int(leaf.cumulative)
    return {
        "account": address,
        "cumulative": cumulative,
        "claimed": int(claimed),
        "claimable": max(cumulative - int(claimed), 0),
        "proof": json.loads(leaf.proof),
        "root": accepted,
    }
