"""Onboarding a car through its automaker: the oracle's side of `mintWithAttestation`
(DESIGN.md §4).

`begin(connection, owner, session_id)` is asked by the signed-in owner (the gateway passes
its bearer session): it makes a single-use, expiring `state` bound to that address and
session, and, where the connection uses PKCE (RFC 7636, S256), a verifier kept encrypted
beside it; it returns the automaker's consent URL carrying the state (and the verifier's
challenge). The automaker sends the owner's browser back to the gateway's callback with
`code` and `state`: `complete(connection, code, state)` consumes the state (once, before its
expiry), requires its session to be still live, exchanges the code (with the verifier) for
tokens (stored encrypted), reads the VIN from the automaker and answers the connection
oracle's EIP-712 `MintAttestation` for the state's owner: the owner (or any relayer) submits
it to `VehicleId.mintWithAttestation`. Expired states are purged whenever states are written.

A consent never silently replaces another wallet's link of the same car: only the vehicle's
owner may link it, and another wallet's link is replaced only after a sale the indexer has
confirmed (its tokens are destroyed), or when it was never minted and its attestation has
expired (an abandoned onboarding).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from sqlalchemy import delete
from sqlalchemy.orm import Session
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from workers import eip712
from workers.config import Settings
from workers.db.gateway import SessionStatus, session_status
from workers.db.oem import OemAuthState, OemLink
from workers.db.projections import Vehicle
from workers.db.session import Database
from workers.oem import pkce
from workers.oem.connectors import Connector, connector_for
from workers.oem.links import (
    LinkHeldError,
    LinkInput,
    cipher_from,
    drop_links,
    links_held_by_others,
    save_link,
)
from workers.oem.tokens import MemoryTokens

#: Bits of an attestation's random nonce: collisions stay negligible (a birthday bound near
#: 2^26 attestations per oracle) and the nonce stays a JSON-safe integer (below 2^53).
ATTESTATION_NONCE_BITS = 52


class OnboardingError(Exception):
    """Onboarding refused; `reason` is stable (bad_state, session_revoked, unknown_connection,
    connection_inactive, oracle_mismatch, bad_vin, vehicle_exists,
    vehicle_linked_to_other_owner)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AuthorizeStart:
    url: str
    state: str
    expires_at: int


@dataclass(frozen=True)
class PendingConsent:
    """What a consumed state was made for."""

    owner: str
    session_id: str
    #: The PKCE verifier, in clear (None: the connection does not use PKCE).
    verifier: str | None


@dataclass(frozen=True)
class Attestation:
    to: str
    connection_id: int
    vin_hash: str
    nonce: int
    deadline: int
    signature: str

    def to_json(self) -> dict[str, Any]:
        """The callback's answer (DESIGN.md §4)."""
        return {
            "to": self.to,
            "connection_id": self.connection_id,
            "vin_hash": self.vin_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class Onboarded:
    link_id: int
    #: The vehicle NFT if it already exists (the owner re-connected it), else 0.
    vehicle_id: int
    #: What the owner submits to mint; None when the vehicle already exists.
    attestation: Attestation | None


class OracleChain:
    """VehicleId as the oracle reads it (latest block)."""

    def __init__(self, vehicle_id: Contract, chain_id: int) -> None:
        self.contract = vehicle_id
        self.chain_id = chain_id

    @property
    def domain(self) -> eip712.Domain:
        return eip712.domain(eip712.VEHICLE_DOMAIN, self.chain_id, self.contract.address)

    def connection(self, connection_id: int) -> tuple[str, str, bool]:
        name, oracle, active = self.contract.functions.connection(connection_id).call(
            block_identifier="latest"
        )
        return str(name), to_checksum_address(oracle), bool(active)

    def vehicle_of_vin(self, digest: bytes) -> int:
        return int(self.contract.functions.vehicleOfVin(digest).call(block_identifier="latest"))

    def owner_of(self, vehicle_id: int) -> str:
        return to_checksum_address(
            self.contract.functions.ownerOf(vehicle_id).call(block_identifier="latest")
        )


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _purge_expired_states(session: Session, now: int) -> None:
    """Deletes onboarding states past their expiry (on every write of the table)."""
    session.execute(
        delete(OemAuthState)
        .where(OemAuthState.expires_at <= now)
        .execution_options(synchronize_session=False)
    )


def _attestation_pending(link: OemLink, now: int, attestation_ttl: int) -> bool:
    """A link of a car not minted yet whose attestation may still be used (see `attest`)."""
    return link.vehicle_id is None and int(link.updated_at) + attestation_ttl > now


class Onboarding:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        chain: OracleChain,
        *,
        connectors: Callable[[int, Settings], Connector] = connector_for,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.db = db
        self.chain = chain
        self.connectors = connectors
        self.cipher = cipher_from(settings)
        self.oracle = Account.from_key(settings.oracle_key.get_secret_value())
        self._clock = clock

    def _connector(self, connection_id: int) -> Connector:
        try:
            return self.connectors(connection_id, self.settings)
        except KeyError as exc:
            raise OnboardingError("unknown_connection", f"no OEM connection {connection_id} here") from exc

    def begin(self, connection_id: int, owner: str, session_id: str) -> AuthorizeStart:
        """A fresh `state` for the signed-in `owner` (and the bearer session that asked) and
        the automaker's consent URL carrying it, with a PKCE challenge where the connection
        uses PKCE."""
        connector = self._connector(connection_id)
        state = secrets.token_urlsafe(32)
        verifier = pkce.new_verifier() if connector.pkce else None
        now = int(self._clock())
        expires_at = now + self.settings.oem_state_ttl
        with self.db.session() as session:
            _purge_expired_states(session, now)
            session.add(
                OemAuthState(
                    state_hash=_state_hash(state),
                    connection_id=connection_id,
                    owner=to_checksum_address(owner),
                    session_id=session_id,
                    verifier_ciphertext=None if verifier is None else self.cipher.encrypt_text(verifier),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        challenge = None if verifier is None else pkce.challenge(verifier)
        return AuthorizeStart(connector.authorize_url(state, challenge), state, expires_at)

    def _consume(self, connection_id: int, state: str) -> PendingConsent:
        """What the state was made for; the state is spent (once, before its expiry), and its
        session must still be live (not signed out, revoked or expired)."""
        now = int(self._clock())
        with self.db.session() as session:
            row = session.execute(
                delete(OemAuthState)
                .where(
                    OemAuthState.state_hash == _state_hash(state),
                    OemAuthState.connection_id == connection_id,
                    OemAuthState.expires_at > now,
                )
                .returning(OemAuthState.owner, OemAuthState.session_id, OemAuthState.verifier_ciphertext)
                .execution_options(synchronize_session=False)
            ).first()
            _purge_expired_states(session, now)
            status = SessionStatus.UNKNOWN if row is None else session_status(session, row.session_id, now)
        if row is None:  # (the purge is committed all the same)
            raise OnboardingError(
                "bad_state", "the state is unknown, used, expired or for another connection"
            )
        owner, session_id, verifier_ciphertext = row
        if status is not SessionStatus.LIVE:
            raise OnboardingError(
                "session_revoked",
                f"the session that started this onboarding is {status.value}: sign in and start again",
            )
        verifier = None if verifier_ciphertext is None else self.cipher.decrypt_text(verifier_ciphertext)
        return PendingConsent(to_checksum_address(str(owner)), str(session_id), verifier)

    def _check_connection(self, connection_id: int) -> None:
        try:
            _, oracle, active = self.chain.connection(connection_id)
        except ContractLogicError as exc:  # UnknownConnection
            raise OnboardingError(
                "unknown_connection", f"VehicleId has no connection {connection_id}"
            ) from exc
        if not active:
            raise OnboardingError("connection_inactive", f"connection {connection_id} is not active on chain")
        if oracle != self.oracle.address:
            raise OnboardingError(
                "oracle_mismatch",
                f"connection {connection_id}'s oracle is {oracle}, not {self.oracle.address} (ORACLE_KEY)",
            )

    def complete(self, connection_id: int, code: str, state: str) -> Onboarded:
        """The callback: state -> owner, code (+ verifier) -> tokens -> VIN, then the link
        and the attestation."""
        connector = self._connector(connection_id)
        pending = self._consume(connection_id, state)
        owner = pending.owner
        self._check_connection(connection_id)
        tokens = MemoryTokens(connector.exchange_code(code, pending.verifier))
        found = connector.read_vehicle(tokens)
        vin = found.vin.strip().upper()
        try:
            digest = eip712.vin_hash(vin)
        except eip712.InvalidVinError as exc:
            raise OnboardingError("bad_vin", str(exc)) from exc
        existing = self.chain.vehicle_of_vin(digest)
        if existing and self.chain.owner_of(existing) != owner:
            raise OnboardingError(
                "vehicle_exists", f"VIN already minted as vehicle {existing} to someone else"
            )
        vin_hash = "0x" + digest.hex()
        # the attestation's deadline counts from before the link is saved: a link's
        # updated_at + OEM_ATTESTATION_TTL never ends before its attestation does
        now = int(self._clock())
        with self.db.session() as session:
            self._replace_other_wallets(session, vin_hash, owner, existing, now)
            try:
                link_id = save_link(
                    session,
                    self.cipher,
                    LinkInput(
                        connection_id=connection_id,
                        vin_hash=vin_hash,
                        vin=vin,
                        external_id=found.external_id,
                        owner=owner,
                        vehicle_id=existing or None,
                        tokens=tokens.current(),
                        make=found.make,
                        model=found.model,
                    ),
                )
            except LinkHeldError as exc:  # another wallet's consent landed meanwhile
                raise OnboardingError(
                    "vehicle_linked_to_other_owner", "another wallet linked this vehicle meanwhile"
                ) from exc
        if existing:
            return Onboarded(link_id, existing, None)
        return Onboarded(link_id, 0, self.attest(owner, connection_id, digest, now))

    def _replace_other_wallets(
        self, session: Session, vin_hash: str, owner: str, vehicle_id: int, now: int
    ) -> None:
        """Drops other wallets' links of the car (their tokens with them) when `owner` may
        take it over; otherwise refuses `vehicle_linked_to_other_owner`. A minted car: only
        once the indexer confirms `owner` as its owner (a sale: the previous owner's consent
        does not outlive it). A car not minted yet: only once the other wallet's attestation
        has expired unused."""
        others = links_held_by_others(session, vin_hash, owner)
        if not others:
            return
        if vehicle_id:
            indexed = session.get(Vehicle, vehicle_id)
            confirmed = indexed is not None and not indexed.burned and (indexed.owner or "") == owner.lower()
            if not confirmed:
                raise OnboardingError(
                    "vehicle_linked_to_other_owner",
                    f"vehicle {vehicle_id} is linked to another wallet and the indexer has not confirmed "
                    f"{owner} as its owner yet: retry once the transfer is confirmed",
                )
        elif any(_attestation_pending(link, now, self.settings.oem_attestation_ttl) for link in others):
            raise OnboardingError(
                "vehicle_linked_to_other_owner",
                "another wallet is onboarding this vehicle and its attestation is still valid",
            )
        drop_links(session, [int(link.id) for link in others])

    def attest(self, to: str, connection_id: int, digest: bytes, now: int | None = None) -> Attestation:
        """The oracle's signature over MintAttestation(to, connectionId, vinHash, nonce, deadline)
        with deadline = `now` + OEM_ATTESTATION_TTL and a random nonce: nonces are unordered on
        chain, so every attestation is outstanding on its own, used in any order, each once,
        whatever this database remembers (a restored database issues no used nonce again).
        Valid until used, cancelled (`invalidateNonces`), or past its deadline; a VIN mints once
        whichever of its attestations comes first."""
        nonce = secrets.randbits(ATTESTATION_NONCE_BITS)
        deadline = (int(self._clock()) if now is None else now) + self.settings.oem_attestation_ttl
        data = eip712.mint_attestation(
            self.chain.domain,
            to=to,
            connection_id=connection_id,
            vin_hash=digest,
            nonce=nonce,
            deadline=deadline,
        )
        signature = eip712.sign(data, self.oracle.key)
        return Attestation(
            to=to_checksum_address(to),
            connection_id=connection_id,
            vin_hash="0x" + digest.hex(),
            nonce=nonce,
            deadline=deadline,
            signature="0x" + signature.hex(),
        )
