"""Linked vehicles (`oem_links`): saving a consent's tokens encrypted, finding a vehicle's
link, and `LinkTokens`, the TokenStore pulls and commands use.

Refresh tokens rotate, so two workers refreshing one link race: the loser's refresh is
refused (invalid_grant). `LinkTokens` refreshes without holding a lock across the HTTP
call; on refusal it re-reads the row, and if another worker stored newer tokens meanwhile it
uses those. Only when no newer tokens exist is the link marked `reauth_required`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workers.config import Settings
from workers.db.oem import OemLink
from workers.db.session import Database
from workers.oem.errors import ReauthorizationRequiredError
from workers.oem.tokens import TokenCipher, TokenSet

ACTIVE = "active"
REAUTH_REQUIRED = "reauth_required"
OWNER_CHANGED = "owner_changed"


def cipher_from(settings: Settings) -> TokenCipher:
    return TokenCipher([key.get_secret_value() for key in settings.oem_token_keys])


@dataclass(frozen=True)
class LinkInput:
    connection_id: int
    vin_hash: str
    vin: str
    external_id: str
    owner: str
    vehicle_id: int | None
    tokens: TokenSet
    make: str | None = None
    model: str | None = None


class LinkHeldError(Exception):
    """The link of (connection, VIN) belongs to another wallet: a consent never overwrites it
    (onboarding first drops another wallet's links when it may, `drop_links`)."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"the vehicle is linked to {owner}")
        self.owner = owner


def save_link(session: Session, cipher: TokenCipher, link: LinkInput) -> int:
    """Inserts the link of (connection, VIN), or replaces the same owner's earlier consent.
    Returns its id; LinkHeldError if another wallet holds it (also when a concurrent consent
    of another wallet inserted it first)."""
    now = int(time.time())
    values = {
        "vin_ciphertext": cipher.encrypt_text(link.vin),
        "external_id": link.external_id,
        "make": link.make,
        "model": link.model,
        "owner": link.owner,
        "vehicle_id": link.vehicle_id,
        "tokens_ciphertext": cipher.encrypt(link.tokens),
        "token_expires_at": int(link.tokens.expires_at),
        "status": ACTIVE,
        "last_error": None,
        "scheduled_at": None,
        "updated_at": now,
    }
    existing = _find(session, link.connection_id, link.vin_hash)
    if existing is None:
        try:
            with session.begin_nested():
                row = OemLink(
                    connection_id=link.connection_id, vin_hash=link.vin_hash, created_at=now, **values
                )
                session.add(row)
            return row.id
        except IntegrityError:  # a concurrent consent for the same car inserted first
            existing = _find(session, link.connection_id, link.vin_hash)
            if existing is None:
                raise
    if existing.owner.lower() != link.owner.lower():
        raise LinkHeldError(existing.owner)
    for name, value in values.items():
        setattr(existing, name, value)
    session.flush()
    return existing.id


def _find(session: Session, connection_id: int, vin_hash: str) -> OemLink | None:
    return session.scalar(
        select(OemLink).where(OemLink.connection_id == connection_id, OemLink.vin_hash == vin_hash.lower())
    )


def links_held_by_others(session: Session, vin_hash: str, owner: str) -> list[OemLink]:
    """The links of a VIN (on any connection) whose consent is another wallet's."""
    return list(
        session.scalars(
            select(OemLink).where(OemLink.vin_hash == vin_hash.lower(), OemLink.owner != owner.lower())
        )
    )


def drop_links(session: Session, link_ids: list[int]) -> None:
    """Deletes links, their encrypted tokens with them (a sold car's previous owner's)."""
    if link_ids:
        session.execute(delete(OemLink).where(OemLink.id.in_(link_ids)))


def link_for_vehicle(session: Session, vehicle_id: int) -> OemLink | None:
    """The most recently consented link of a vehicle (any status)."""
    return session.scalar(
        select(OemLink).where(OemLink.vehicle_id == vehicle_id).order_by(OemLink.updated_at.desc()).limit(1)
    )


def set_status(db: Database, link_id: int, status: str, error: str | None) -> None:
    with db.session() as session:
        session.execute(
            update(OemLink)
            .where(OemLink.id == link_id)
            .values(status=status, last_error=error, updated_at=int(time.time()))
        )


def read_vin(session: Session, cipher: TokenCipher, link: OemLink) -> str:
    """The VIN in clear (callers check the VIN permission bit first)."""
    return cipher.decrypt_text(link.vin_ciphertext)


class LinkTokens:
    """The TokenStore of one link row (see the module docstring for the refresh race)."""

    def __init__(self, db: Database, link_id: int, cipher: TokenCipher) -> None:
        self.db = db
        self.link_id = link_id
        self.cipher = cipher

    def _row(self) -> tuple[str, TokenSet]:
        with self.db.session(read_only=True) as session:
            ciphertext = session.scalar(select(OemLink.tokens_ciphertext).where(OemLink.id == self.link_id))
        if ciphertext is None:
            raise ReauthorizationRequiredError(f"OEM link {self.link_id} no longer exists")
        return ciphertext, self.cipher.decrypt(ciphertext)

    def current(self) -> TokenSet:
        return self._row()[1]

    def refreshed(self, stale: TokenSet, refresh: Callable[[str], TokenSet]) -> TokenSet:
        ciphertext, current = self._row()
        if current.access_token != stale.access_token:
            return current  # another worker refreshed already
        try:
            fresh = refresh(stale.refresh_token)
        except ReauthorizationRequiredError as exc:
            _, now_current = self._row()
            if now_current.access_token != stale.access_token:
                return now_current  # we lost the race to a worker that stored the new pair
            set_status(self.db, self.link_id, REAUTH_REQUIRED, exc.detail)
            raise
        with self.db.session() as session:
            stored = session.execute(
                update(OemLink)
                .where(OemLink.id == self.link_id, OemLink.tokens_ciphertext == ciphertext)
                .values(
                    tokens_ciphertext=self.cipher.encrypt(fresh),
                    token_expires_at=int(fresh.expires_at),
                    updated_at=int(time.time()),
                )
            )
        return fresh if stored.rowcount == 1 else self.current()
