"""The claims read model: what each member can still claim from settled epochs, as the
gateway serves it (`GET /v1/members/{address}/claims`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workers.db.projections import Claim, SettledEpoch
from workers.db.settlement import SettlementEpoch, SettlementLeaf


def unclaimed_claims(session: Session, address: str) -> list[dict[str, Any]]:
    """The epochs `address` can still claim, oldest first: settled on chain (as the indexer
    confirmed it, with the root the workers computed), and not claimed yet. Each entry has
    what `Marketplace.claim` takes: product_id, epoch, index, account, amount, proof; and the
    root."""
    account = address.lower()
    leaves = session.scalars(select(SettlementLeaf).where(SettlementLeaf.account == account)).all()
    if not leaves:
        return []
    products = sorted({leaf.product_id for leaf in leaves})
    roots = {
        (e.product_id, e.epoch): e.root
        for e in session.scalars(select(SettlementEpoch).where(SettlementEpoch.product_id.in_(products)))
    }
    settled = {
        (s.product_id, int(s.epoch)): s.members_root
        for s in session.scalars(select(SettledEpoch).where(SettledEpoch.product_id.in_(products)))
    }
    claimed = {
        (c.product_id, int(c.epoch))
        for c in session.scalars(
            select(Claim).where(Claim.account == account, Claim.product_id.in_(products))
        )
    }
    out = []
    for leaf in sorted(leaves, key=lambda x: (x.epoch, x.product_id)):
        key = (leaf.product_id, leaf.epoch)
        root = roots.get(key)
        if root is None or settled.get(key) != root or key in claimed:
            continue
        out.append(
            {
                "product_id": leaf.product_id,
                "epoch": leaf.epoch,
                "index": leaf.index,
                "account": leaf.account,
                "amount": leaf.amount,
                "proof": json.loads(leaf.proof),
                "root": root,
            }
        )
    return out
