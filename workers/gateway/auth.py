"""Sign-In with Ethereum (EIP-4361) and the bearer tokens it yields.

POST /auth/nonce hands out a single-use nonce and the message to sign; POST /auth/verify
checks the message's domain, chain id, nonce (issued here, unused, unexpired, for this
address) and signature, consumes the nonce with one conditional UPDATE, and answers an
HMAC-signed bearer token. Verifying a token needs no database round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_utils import is_address, to_checksum_address
from sqlalchemy import update
from sqlalchemy.orm import Session
from web3 import HTTPProvider

from workers.config import Settings
from workers.db.gateway import GatewaySession, SiweNonce
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


def issue_nonce(
    session: Session, settings: Settings, address: str, now: int | None = None
) -> tuple[str, str]:
    """Records a fresh nonce for `address`; returns (nonce, the EIP-4361 message to sign)."""
    if not is_address(address):
        raise Problem("bad_request", f"{address!r} is not an Ethereum address")
    now = int(time.time()) if now is None else now
    nonce = secrets.token_hex(16)
    expires = now + settings.siwe_nonce_ttl
    message = SiweMessage(
        domain=settings.siwe_domain,
        address=to_checksum_address(address),
        statement=SIWE_STATEMENT,
        uri=settings.siwe_uri,
        version="1",
        chain_id=settings.siwe_chain_id,
        nonce=nonce,
        issued_at=_iso(now),
        expiration_time=_iso(expires),
    ).prepare_message()
    session.add(SiweNonce(nonce=nonce, address=address, issued_at=now, expires_at=expires))
    return nonce, message


def _parse(message: str) -> SiweMessage:
    try:
        return SiweMessage.from_message(message=message)
    except Exception as exc:  # the parser raises several unrelated types
        raise Problem("bad_message", f"not an EIP-4361 message: {exc}") from exc


def verify_login(session: Session, settings: Settings, message: str, signature: str) -> Identity:
    """Checks a signed SIWE message, consumes its nonce, records and returns the session."""
    parsed = _parse(message)
    if parsed.domain != settings.siwe_domain:
        raise Problem(
            "wrong_domain", f"the message is for {parsed.domain!r}, this is {settings.siwe_domain!r}"
        )
    if int(parsed.chain_id) != settings.siwe_chain_id:
        raise Problem(
            "wrong_chain", f"the message names chain {parsed.chain_id}, this is {settings.siwe_chain_id}"
        )
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
        parsed.verify(signature, domain=settings.siwe_domain, nonce=row.nonce, provider=provider)
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
    identity = Identity(
        address=to_checksum_address(parsed.address),
        session_id=secrets.token_hex(16),
        expires_at=now + settings.session_ttl,
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
