"""Onboarding a car through its automaker: the oracle's side of `mintWithAttestation`
(DESIGN.md §4).

`begin(connection, owner)` makes a single-use, expiring `state` bound to the owner's
address and returns the automaker's consent URL. The automaker sends the owner back to the
gateway's callback with `code` and `state`; `complete(connection, code, state)` consumes the
state, exchanges the code for tokens (stored encrypted), reads the VIN from the automaker and
answers the connection oracle's EIP-712 `MintAttestation` for the state's owner: the owner
(or any relayer) submits it to `VehicleId.mintWithAttestation`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import is_address, to_checksum_address
from sqlalchemy import select, update
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from workers import eip712
from workers.config import Settings
from workers.db.oem import OemAuthState
from workers.db.session import Database
from workers.oem.connectors import Connector, connector_for
from workers.oem.links import LinkInput, cipher_from, save_link
from workers.oem.tokens import MemoryTokens


class OnboardingError(Exception):
    """Onboarding refused; `reason` is stable (bad_state, bad_owner, unknown_connection,
    connection_inactive, oracle_mismatch, bad_vin, vehicle_exists)."""

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

    def nonce(self, signer: str) -> int:
        return int(self.contract.functions.nonces(signer).call(block_identifier="latest"))

    def vehicle_of_vin(self, digest: bytes) -> int:
        return int(self.contract.functions.vehicleOfVin(digest).call(block_identifier="latest"))

    def owner_of(self, vehicle_id: int) -> str:
        return to_checksum_address(
            self.contract.functions.ownerOf(vehicle_id).call(block_identifier="latest")
        )


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


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

    def begin(self, connection_id: int, owner: str) -> AuthorizeStart:
        """A fresh `state` for `owner` and the automaker's consent URL carrying it."""
        if not is_address(owner):
            raise OnboardingError("bad_owner", f"{owner!r} is not an address")
        connector = self._connector(connection_id)
        state = secrets.token_urlsafe(32)
        now = int(self._clock())
        expires_at = now + self.settings.oem_state_ttl
        with self.db.session() as session:
            session.add(
                OemAuthState(
                    state_hash=_state_hash(state),
                    connection_id=connection_id,
                    owner=to_checksum_address(owner),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return AuthorizeStart(connector.authorize_url(state), state, expires_at)

    def _consume(self, connection_id: int, state: str) -> str:
        """The owner the state was made for; the state is spent (once, before its expiry)."""
        now = int(self._clock())
        digest = _state_hash(state)
        with self.db.session() as session:
            spent = session.execute(
                update(OemAuthState)
                .where(
                    OemAuthState.state_hash == digest,
                    OemAuthState.connection_id == connection_id,
                    OemAuthState.used_at.is_(None),
                    OemAuthState.expires_at > now,
                )
                .values(used_at=now)
            )
            if spent.rowcount != 1:
                raise OnboardingError(
                    "bad_state", "the state is unknown, used, expired or for another connection"
                )
            owner = session.scalar(select(OemAuthState.owner).where(OemAuthState.state_hash == digest))
        return to_checksum_address(str(owner))

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
        """The callback: state -> owner, code -> tokens -> VIN, then the attestation."""
        connector = self._connector(connection_id)
        owner = self._consume(connection_id, state)
        self._check_connection(connection_id)
        tokens = MemoryTokens(connector.exchange_code(code))
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
        with self.db.session() as session:
            link_id = save_link(
                session,
                self.cipher,
                LinkInput(
                    connection_id=connection_id,
                    vin_hash="0x" + digest.hex(),
                    vin=vin,
                    external_id=found.external_id,
                    owner=owner,
                    vehicle_id=existing or None,
                    tokens=tokens.current(),
                    make=found.make,
                    model=found.model,
                ),
            )
        if existing:
            return Onboarded(link_id, existing, None)
        return Onboarded(link_id, 0, self.attest(owner, connection_id, digest))

    def attest(self, to: str, connection_id: int, digest: bytes) -> Attestation:
        """The oracle's signature over MintAttestation(to, connectionId, vinHash, nonce, deadline),
        with nonce = VehicleId.nonces(oracle) now: an attestation is valid until the oracle's
        next attestation is used, or its deadline."""
        nonce = self.chain.nonce(self.oracle.address)
        deadline = int(self._clock()) + self.settings.oem_attestation_ttl
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
