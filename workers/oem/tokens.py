"""OAuth tokens of a linked vehicle, and their encryption at rest (Fernet, key from settings).

Refresh tokens are single-use at both OEMs: a refreshed pair must be stored before it is
used, and two workers must not refresh the same pair at once (TokenStore implementations
serialise refreshes and re-read what another worker stored).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    #: Unix time the access token stops working (as the OEM announced it).
    expires_at: float
    token_type: str = "Bearer"

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - seconds <= (time.time() if now is None else now)

    @classmethod
    def from_oauth(cls, body: dict[str, object], now: float | None = None) -> TokenSet:
        """From an RFC 6749 token response (`access_token`, `refresh_token`, `expires_in`)."""
        issued = time.time() if now is None else now
        try:
            return cls(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_at=issued + float(body["expires_in"]),  # type: ignore[arg-type]
                token_type=str(body.get("token_type") or "Bearer"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            from workers.oem.errors import MalformedPayloadError  # noqa: PLC0415

            raise MalformedPayloadError(f"token response without {exc}") from exc


class TokenDecryptError(RuntimeError):
    """Stored tokens cannot be decrypted with any configured key."""


class TokenCipher:
    """Fernet encryption of token sets; the first key encrypts, every key may decrypt
    (so keys can be rotated: add the new key first, re-encrypt, then drop the old one)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed (OEM_TOKEN_KEY)")
        self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])

    def encrypt_text(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt_text(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise TokenDecryptError("stored secret does not decrypt with any OEM_TOKEN_KEY") from exc

    def encrypt(self, tokens: TokenSet) -> str:
        return self.encrypt_text(json.dumps(asdict(tokens)))

    def decrypt(self, ciphertext: str) -> TokenSet:
        return TokenSet(**json.loads(self.decrypt_text(ciphertext)))

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypts under the first key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


class TokenStore(Protocol):
    """Where a connector gets a vehicle's current tokens and puts refreshed ones."""

    def current(self) -> TokenSet: ...

    def refreshed(self, stale: TokenSet, refresh: Callable[[str], TokenSet]) -> TokenSet:
        """Tokens newer than `stale`: ones another worker stored meanwhile, or
        `refresh(stale.refresh_token)`, stored before they are returned."""
        ...


class MemoryTokens:
    """A TokenStore in memory (onboarding before the link row exists; tests)."""

    def __init__(self, tokens: TokenSet, on_refresh: Callable[[TokenSet], None] | None = None) -> None:
        self.tokens = tokens
        self._on_refresh = on_refresh

    def current(self) -> TokenSet:
        return self.tokens

    def refreshed(self, stale: TokenSet, refresh: Callable[[str], TokenSet]) -> TokenSet:
        if self.tokens.access_token != stale.access_token:
            return self.tokens
        self.tokens = refresh(stale.refresh_token)
        if self._on_refresh is not None:
            self._on_refresh(self.tokens)
        return self.tokens
