"""The connector interface: what the workers ask of any automaker cloud, and the machinery
every connector shares — client-side pacing, token refresh (ahead of expiry and on 401),
backoff on 429 (honouring Retry-After) and on 5xx/timeouts (exponential, full jitter).

Implementations translate their client library's outcomes into `workers.oem.errors` and
only implement the `_…` hooks; they never retry or refresh on their own.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import ClassVar, TypeVar

from workers.config import OemConnection
from workers.oem.errors import (
    AuthExpiredError,
    InvalidGrantError,
    OemError,
    RateLimitedError,
    ReauthorizationRequiredError,
    UnavailableError,
)
from workers.oem.metrics import RATE_LIMITED, REAUTH
from workers.oem.ratelimit import RateLimiter, TokenBucket
from workers.oem.retry import RetryPolicy
from workers.oem.signals import Signal, oem_source
from workers.oem.tokens import TokenSet, TokenStore

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds one HTTP request to an OEM may take (where the client library lets us choose).
HTTP_TIMEOUT = 30.0


class Command(StrEnum):
    """Remote commands (DESIGN.md §4) and the permission bit each needs (§3.1)."""

    LOCK = "lock"
    UNLOCK = "unlock"
    START = "start"


@dataclass(frozen=True)
class OemVehicle:
    """The vehicle an OAuth consent covers, as the OEM describes it."""

    external_id: str
    vin: str
    make: str | None = None
    model: str | None = None
    year: int | None = None


@dataclass(frozen=True)
class CommandResult:
    command: Command
    detail: str


class Connector(ABC):
    """One automaker connection (an on-chain VehicleId connection id) and its OAuth client."""

    kind: ClassVar[str]
    #: Whether this API family documents PKCE on its OAuth (a connection may say otherwise).
    pkce_default: ClassVar[bool]

    def __init__(
        self,
        connection: OemConnection,
        redirect_uri: str,
        *,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.redirect_uri = redirect_uri
        self.policy = policy or RetryPolicy()
        self.limiter: RateLimiter = limiter or TokenBucket(
            connection.rate_per_second or 5.0, connection.rate_burst or 10
        )
        self._sleep = sleep
        self._clock = clock

    @property
    def connection_id(self) -> int:
        return self.connection.connection_id

    @property
    def source(self) -> str:
        """The `source` of every signal this connection produces."""
        return oem_source(self.connection_id)

    @property
    def pkce(self) -> bool:
        """Whether onboarding on this connection uses PKCE (RFC 7636, S256)."""
        return self.pkce_default if self.connection.pkce is None else self.connection.pkce

    @property
    def client_id(self) -> str:
        return self.connection.client_id or ""

    @property
    def client_secret(self) -> str:
        secret = self.connection.client_secret
        return secret.get_secret_value() if secret is not None else ""

    # --- what callers use --------------------------------------------------------------
    @abstractmethod
    def authorize_url(self, state: str, code_challenge: str | None = None) -> str:
        """The OEM's consent page for one vehicle, returning to `redirect_uri` with `state`;
        with `code_challenge` (S256) the code it returns is bound to the challenge's verifier."""

    def exchange_code(self, code: str, code_verifier: str | None = None) -> TokenSet:
        """Tokens for an authorization code (single-use), with the PKCE verifier when its
        consent carried a challenge. InvalidGrantError if refused."""
        return self._call(lambda _: self._exchange_code(code, code_verifier), None, "code exchange")

    def refresh(self, refresh_token: str) -> TokenSet:
        """A new token pair; the old refresh token dies. ReauthorizationRequiredError if the
        OEM refuses it (the owner must consent again)."""
        reauth = REAUTH.labels(self.connection.name, "refreshed")
        try:
            tokens = self._call(lambda _: self._refresh(refresh_token), None, "token refresh")
        except InvalidGrantError as exc:
            REAUTH.labels(self.connection.name, "refused").inc()
            raise ReauthorizationRequiredError(
                f"{self.connection.name}: refresh refused: {exc.detail}"
            ) from exc
        except OemError:
            REAUTH.labels(self.connection.name, "failed").inc()
            raise
        reauth.inc()
        return tokens

    def read_vehicle(self, tokens: TokenStore) -> OemVehicle:
        """The one vehicle the tokens cover (its OEM id and VIN)."""
        return self._call(self._read_vehicle, tokens, "read vehicle")

    def read_signals(self, tokens: TokenStore, external_id: str) -> list[Signal]:
        """The vehicle's current signals, normalised to VSS with this connection's source."""
        return self._call(
            lambda access: self._read_signals(access or "", external_id), tokens, "read signals"
        )

    def send_command(self, tokens: TokenStore, external_id: str, command: Command) -> CommandResult:
        """Relays `command` to the vehicle. The caller has checked the permission."""
        return self._call(
            lambda access: self._send_command(access or "", external_id, command), tokens, command
        )

    # --- what implementations provide ---------------------------------------------------
    @abstractmethod
    def _exchange_code(self, code: str, code_verifier: str | None) -> TokenSet: ...

    @abstractmethod
    def _refresh(self, refresh_token: str) -> TokenSet: ...

    @abstractmethod
    def _read_vehicle(self, access_token: str | None) -> OemVehicle: ...

    @abstractmethod
    def _read_signals(self, access_token: str, external_id: str) -> list[Signal]: ...

    @abstractmethod
    def _send_command(self, access_token: str, external_id: str, command: Command) -> CommandResult: ...

    # --- shared machinery ---------------------------------------------------------------
    def _fresh(self, tokens: TokenStore) -> TokenSet:
        current = tokens.current()
        if current.expires_within(self.policy.refresh_skew, self._clock()):
            current = tokens.refreshed(current, self.refresh)
        return current

    def _call(self, op: Callable[[str | None], T], tokens: TokenStore | None, what: str) -> T:
        """Runs `op(access_token)` with pacing, refresh and backoff (see module docstring)."""
        attempt = 0
        refreshed_after_401 = False
        while True:
            attempt += 1
            used = self._fresh(tokens) if tokens is not None else None
            self.limiter.acquire()
            try:
                return op(used.access_token if used is not None else None)
            except AuthExpiredError as exc:
                if tokens is None or used is None or refreshed_after_401:
                    raise ReauthorizationRequiredError(
                        f"{what}: access refused after refresh: {exc.detail}"
                    ) from exc
                refreshed_after_401 = True
                attempt -= 1  # a refresh is not a failed attempt
                tokens.refreshed(used, self.refresh)
            except RateLimitedError as exc:
                RATE_LIMITED.labels(self.connection.name).inc()
                wait = exc.retry_after if exc.retry_after is not None else self.policy.backoff(attempt)
                if attempt >= self.policy.max_attempts or wait > self.policy.retry_after_max:
                    raise
                log.info(
                    "%s %s: 429, retrying in %.2fs (attempt %d)", self.connection.name, what, wait, attempt
                )
                self._sleep(wait)
            except UnavailableError as exc:
                if attempt >= self.policy.max_attempts:
                    raise
                wait = self.policy.backoff(attempt)
                log.info("%s %s: %s, retrying in %.2fs", self.connection.name, what, exc.detail, wait)
                self._sleep(wait)


def parse_retry_after(value: object, now: float | None = None) -> float | None:
    """Retry-After in seconds from now, in either form of RFC 9110 §10.2.3: delta-seconds or
    an HTTP-date (a date already past is 0). None if absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 850 / asctime forms: GMT
            when = when.replace(tzinfo=UTC)
        return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    return seconds if seconds >= 0 and math.isfinite(seconds) else None
