"""Sign-In with Ethereum (EIP-4361), the bearer tokens it yields, and their revocation.

POST /auth/nonce hands out a single-use nonce and the message to sign; POST /auth/verify
checks the message's domain, chain id, nonce (issued here, unused, unexpired, for this
address) and signature, consumes the nonce with one conditional UPDATE, records the session
(`gateway_sessions`) and answers an HMAC-signed bearer token naming it.

A token is good while its signature verifies, it has not expired, and its session row is
live: POST /auth/logout revokes the token's session, POST /auth/revoke-all every session of
its address. `SessionGuard` reads the row (one primary-key read) on every authenticated
request and every stream tick, in every gateway process, with no cache: a revocation
committed by one process is refused by all of them from their next request on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils import is_address, to_checksum_address
from sqlalchemy import update
from sqlalchemy.orm import Session
from web3 import HTTPProvider

from workers.config import Settings
from workers.db.gateway import SESSION_ROW, GatewaySession, SessionStatus, SiweNonce, status_of_session_row
from workers.db.session import Database
from workers.gateway.problems import Problem

with warnings.catch_warnings():
    # siwe's ABNF grammar redefines core rules; abnf 2.8 warns about it on import.
    warnings.simplefilter("ignore")
    import siwe
    from siwe import SiweMessage

TOKEN_VERSION = "v1"
#: Seconds the ERC-1271 wallet check may take.
ERC1271_TIMEOUT = 5.0
SIWE_STATEMENT = "Sign in to the DIMO data gateway."


@dataclass(frozen=True)
class Identity:
    """Who a valid bearer token speaks for."""

    address: str  # checksummed
    session_id: str
    expires_at: int


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class SignInRequest:
    """What the message to sign names besides the nonce: the dApp's origin (`domain`, one of
    SIWE_DOMAINS, and `uri`), the chain and how long the session may last."""

    domain: str
    uri: str
    chain_id: int
    #: Seconds from issue to the message's Expiration Time (at most SESSION_TTL).
    expires_in: int


def allowed_domain(settings: Settings, domain: str) -> str:
    """`domain` when SIWE_DOMAINS allows it; else the refusal (`wrong_domain`)."""
    if domain not in settings.siwe_domains:
        allowed = ", ".join(settings.siwe_domains)
        raise Problem("wrong_domain", f"{domain!r} is not a domain this gateway signs in for ({allowed})")
    return domain


def issue_nonce(
    session: Session, settings: Settings, address: str, request: SignInRequest, now: int | None = None
) -> tuple[str, str]:
    """Records a fresh nonce for `address`; returns (nonce, the EIP-4361 message to sign).
    The nonce expires after SIWE_NONCE_TTL; the message (and the session it opens) at
    `request.expires_in`, capped at SESSION_TTL."""
    if not is_address(address):
        raise Problem("bad_request", f"{address!r} is not an Ethereum address")
    allowed_domain(settings, request.domain)
    now = int(time.time()) if now is None else now
    nonce = secrets.token_hex(16)
    message = SiweMessage(
        domain=request.domain,
        address=to_checksum_address(address),
        statement=SIWE_STATEMENT,
        uri=request.uri,
        version="1",
        chain_id=request.chain_id,
        nonce=nonce,
        issued_at=_iso(now),
        expiration_time=_iso(now + min(request.expires_in, settings.session_ttl)),
    ).prepare_message()
    session.add(
        SiweNonce(nonce=nonce, address=address, issued_at=now, expires_at=now + settings.siwe_nonce_ttl)
    )
    return nonce, message


def _parse(message: str) -> SiweMessage:
    try:
        return SiweMessage.from_message(message=message)
    except Exception as exc:  # the parser raises several unrelated types
        raise Problem("bad_message", f"not an EIP-4361 message: {exc}") from exc


def session_end(settings: Settings, parsed: SiweMessage, now: int) -> int:
    """When the session a message opens ends: its Expiration Time, never past SESSION_TTL."""
    limit = now + settings.session_ttl
    if parsed.expiration_time is None:
        return limit
    asked = int(datetime.fromisoformat(str(parsed.expiration_time).replace("Z", "+00:00")).timestamp())
    return min(asked, limit)


def verify_login(
    session: Session, settings: Settings, message: str, signature: str, chain_id: int
) -> Identity:
    """Checks a signed SIWE message (for an allowed domain, on `chain_id`), consumes its
    nonce, records and returns the session (ending at the message's expiry at the latest)."""
    parsed = _parse(message)
    allowed_domain(settings, parsed.domain)
    if int(parsed.chain_id) != chain_id:
        raise Problem("wrong_chain", f"the message names chain {parsed.chain_id}, this is {chain_id}")
    now = int(time.time())
    row = session.get(SiweNonce, parsed.nonce)
    if row is None:
        raise Problem("bad_message", "the nonce was not issued by this gateway")
    if row.used_at is not None:
        raise Problem("replayed", "the nonce was already used")
    if now >= row.expires_at:
        raise Problem("expired", "the nonce has expired; ask for a new one")
    if row.address != parsed.address.lower():
        raise Problem("bad_message", "the nonce was issued to another address")
    # A contract wallet (ERC-1271) is asked through the RPC when the signature is not an EOA's.
    provider = HTTPProvider(settings.rpc_url, request_kwargs={"timeout": ERC1271_TIMEOUT})
    try:
        parsed.verify(signature, domain=parsed.domain, nonce=row.nonce, provider=provider)
    except siwe.ExpiredMessage as exc:
        raise Problem("expired", "the message has expired") from exc
    except siwe.NotYetValidMessage as exc:
        raise Problem("bad_message", "the message is not valid yet") from exc
    except Exception as exc:  # a bad signature, or a wallet check the RPC could not answer
        raise Problem("bad_signature", f"the signature is not {parsed.address}'s over this message") from exc
    consumed = session.execute(
        update(SiweNonce)
        .where(SiweNonce.nonce == row.nonce, SiweNonce.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise Problem("replayed", "the nonce was already used")
    return open_session(session, parsed.address, now, session_end(settings, parsed, now) - now)


def open_session(session: Session, address: str, now: int, ttl: int) -> Identity:
    """Records a new bearer session of `address` (signed in at `now`, for `ttl` seconds)."""
    identity = Identity(
        address=to_checksum_address(address), session_id=secrets.token_hex(16), expires_at=now + ttl
    )
    session.add(
        GatewaySession(
            id=identity.session_id, address=identity.address, issued_at=now, expires_at=identity.expires_at
        )
    )
    return identity


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def encode_token(identity: Identity, secret: bytes) -> str:
    payload = f"{TOKEN_VERSION}.{identity.session_id}.{identity.address}.{identity.expires_at}"
    return f"{payload}.{_mac(secret, payload)}"


def decode_token(token: str, secret: bytes, now: float | None = None) -> Identity:
    """The identity a bearer token speaks for; Problem("bad_token") when forged or expired."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != TOKEN_VERSION:
        raise Problem("bad_token", "the bearer token is malformed")
    payload = ".".join(parts[:4])
    if not hmac.compare_digest(_mac(secret, payload), parts[4]):
        raise Problem("bad_token", "the bearer token's signature does not verify")
    try:
        expires_at = int(parts[3])
    except ValueError as exc:
        raise Problem("bad_token", "the bearer token is malformed") from exc
    if (time.time() if now is None else now) >= expires_at:
        raise Problem("bad_token", "the bearer token has expired; sign in again")
    return Identity(address=parts[2], session_id=parts[1], expires_at=expires_at)


def session_refusal(status: SessionStatus) -> Problem | None:
    """The refusal of a token whose session is not live (None when it is)."""
    if status is SessionStatus.LIVE:
        return None
    if status is SessionStatus.REVOKED:
        return Problem("session_revoked", "this token's session was signed out or revoked; sign in again")
    if status is SessionStatus.EXPIRED:
        return Problem("bad_token", "the bearer token has expired; sign in again")
    return Problem("bad_token", "this gateway has no record of the token's session; sign in again")


class SessionGuard:
    """Is a bearer session still live? Read from the database each time it is asked (no
    cache), so a revocation by any gateway process holds in every other one at once.

    The read is one statement on a pooled DBAPI connection, outside SQLAlchemy's transaction
    machinery, because it runs on every authenticated request: on SQLite that costs 15 µs of
    CPU against 79 µs through a Core connection and its BEGIN/ROLLBACK (PostgreSQL: about
    210 µs against 260 µs), next to the 390-1,570 µs a metered call costs (docs/gateway.md)."""

    def __init__(self, database: Database, counted: Callable[[int], None] = lambda _: None) -> None:
        self._engine = database.engine
        self._counted = counted
        compiled = SESSION_ROW.compile(dialect=self._engine.dialect)
        self._sql = str(compiled)
        self._positional = tuple(compiled.positiontup or ()) if self._engine.dialect.positional else None

    def _row(self, session_id: str) -> Sequence[Any] | None:
        params: Any = {"session_id": session_id}
        if self._positional is not None:
            params = tuple(params[name] for name in self._positional)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, params)
                self._counted(1)
                return cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which ends any transaction the read began

    def refusal(self, session_id: str, now: float | None = None) -> Problem | None:
        """Why the session may not act now, or None."""
        at = int(time.time() if now is None else now)
        return session_refusal(status_of_session_row(self._row(session_id), at))

    def check(self, identity: Identity) -> None:
        """Raises the refusal of `identity`'s session, if any."""
        problem = self.refusal(identity.session_id)
        if problem is not None:
            raise problem


def revoke_session(session: Session, session_id: str, now: int | None = None) -> int:
    """Signs out one session (POST /auth/logout); how many sessions that revoked (0 or 1)."""
    at = int(time.time()) if now is None else now
    result = session.execute(
        update(GatewaySession)
        .where(GatewaySession.id == session_id, GatewaySession.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def revoke_all_sessions(session: Session, address: str, now: int | None = None) -> int:
    """Revokes every unexpired session of `address` (POST /auth/revoke-all); how many."""
    at = int(time.time()) if now is None else now
    result = session.execute(
        update(GatewaySession)
        .where(
            GatewaySession.address == address,
            GatewaySession.revoked_at.is_(None),
            GatewaySession.expires_at > at,
        )
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
