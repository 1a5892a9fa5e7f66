"""The simulator's mutable world: clock, OAuth clients, codes and tokens, faults, rate limits.

The server runs every handler on one event loop (all handlers are `async def` and never
await while mutating), so this state needs no locks.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from devkit.simulator.fleet import Oem, VehicleSpec, VehicleState, build_fleet

FaultKind = Literal["rate_limit", "outage", "malformed"]
FaultApi = Literal["smartcar", "tesla", "oauth", "any"]
MalformedMode = Literal["truncated", "missing_fields", "wrong_types"]
#: Retry-After as delta-seconds or as an HTTP-date (RFC 9110 §10.2.3 allows both).
RetryAfterForm = Literal["seconds", "http-date"]
#: What a 429 limits: one vehicle, or the whole application (Smartcar's RATE_LIMIT codes
#: VEHICLE and SMARTCAR_API; Tesla's Fleet API limits are per vehicle).
RateScope = Literal["vehicle", "application"]

#: How long an authorization code may wait for its exchange (seconds).
CODE_TTL = 600.0
#: RFC 7636 §4.1: a verifier is 43 to 128 characters of [A-Za-z0-9-._~].
VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def pkce_matches(challenge: str, verifier: str | None) -> bool:
    """RFC 7636 §4.6 with S256: BASE64URL(SHA256(verifier)) equals the stored challenge."""
    if verifier is None or not VERIFIER_PATTERN.match(verifier):
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
    return secrets.compare_digest(digest.decode("ascii"), challenge)


#: Entries kept in the request log.
REQUEST_LOG_SIZE = 5000


@dataclass
class SimConfig:
    """What `POST /_sim/config` may change at run time."""

    access_token_ttl: float = 7200.0
    refresh_token_ttl: float = 60 * 86400.0
    #: Requests per access token per `rate_window` before a 429; None: unlimited.
    rate_limit: int | None = None
    rate_window: float = 1.0
    #: Retry-After (seconds) sent with sustained-rate 429s, and its form.
    rate_retry_after: int = 1
    rate_retry_after_form: RetryAfterForm = "seconds"
    #: Tesla: seconds from wake_up until the car is online, and how long it stays awake.
    wake_delay: float = 0.3
    stay_awake: float = 900.0


@dataclass
class Client:
    client_id: str
    secret: str


@dataclass
class AuthCode:
    code: str
    vin: str
    oem: Oem
    redirect_uri: str
    client_id: str | None
    expires_at: float
    #: The consent's PKCE challenge (RFC 7636, S256): the exchange must prove its verifier.
    code_challenge: str | None = None


@dataclass
class Token:
    access_token: str
    refresh_token: str
    client_id: str
    oem: Oem
    vin: str
    expires_at: float
    refresh_expires_at: float
    revoked: bool = False


@dataclass
class Fault:
    id: int
    kind: FaultKind
    api: FaultApi
    remaining: int | None
    until: float | None
    retry_after: int = 1
    status: int = 503
    mode: MalformedMode = "truncated"
    retry_after_form: RetryAfterForm = "seconds"
    scope: RateScope = "vehicle"

    def live(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.remaining is None or self.remaining > 0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "api": self.api,
            "remaining": self.remaining,
            "until": self.until,
            "retry_after": self.retry_after,
            "status": self.status,
            "mode": self.mode,
            "retry_after_form": self.retry_after_form,
            "scope": self.scope,
        }


@dataclass
class Stats:
    requests: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    outages: int = 0
    malformed: int = 0
    code_exchanges: int = 0
    refreshes: int = 0
    commands: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "rate_limited": self.rate_limited,
            "outages": self.outages,
            "malformed": self.malformed,
            "code_exchanges": self.code_exchanges,
            "refreshes": self.refreshes,
            "commands": self.commands,
        }


class SimState:
    """Everything the simulator knows; rebuilt by `reset`."""

    def __init__(self, fleet_size: int, clients: list[Client], seed: str = "dimo-sim") -> None:
        self.fleet_size = fleet_size
        self.seed = seed
        self.clients = {c.client_id: c for c in clients}
        self.reset()

    def reset(self) -> None:
        specs = build_fleet(self.fleet_size, self.seed)
        self.vehicles: dict[str, VehicleState] = {s.vin: VehicleState(spec=s) for s in specs}
        self.by_id: dict[str, str] = {s.id: s.vin for s in specs}
        self.config = SimConfig()
        self.offset = 0.0
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.faults: list[Fault] = []
        self.next_fault_id = 1
        self.windows: dict[str, tuple[float, int]] = {}
        self.stats = Stats()
        self.log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    # -- clock --------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()

    # -- fleet --------------------------------------------------------------------------
    def vehicle(self, key: str) -> VehicleState | None:
        """A vehicle by VIN or OEM id."""
        vin = self.by_id.get(key, key)
        return self.vehicles.get(vin)

    def specs(self) -> list[VehicleSpec]:
        return [v.spec for v in self.vehicles.values()]

    # -- OAuth --------------------------------------------------------------------------
    def client_ok(self, client_id: str | None, secret: str | None) -> bool:
        client = self.clients.get(client_id or "")
        return client is not None and secrets.compare_digest(client.secret, secret or "")

    def issue_code(
        self, vin: str, redirect_uri: str, client_id: str | None, code_challenge: str | None = None
    ) -> AuthCode:
        vehicle = self.vehicles[vin]
        prefix = "NA_" if vehicle.spec.oem is Oem.TESLA else ""
        code = AuthCode(
            code=prefix + secrets.token_urlsafe(24),
            vin=vin,
            oem=vehicle.spec.oem,
            redirect_uri=redirect_uri,
            client_id=client_id,
            expires_at=self.now() + CODE_TTL,
            code_challenge=code_challenge,
        )
        self.codes[code.code] = code
        return code

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None = None
    ) -> AuthCode | None:
        """The code, once: unknown, expired, reused or mismatched codes give None, and so does
        a code consented with a PKCE challenge whose verifier is missing or wrong (the code is
        spent all the same, as RFC 7636 servers do)."""
        found = self.codes.pop(code, None)
        if found is None or found.expires_at <= self.now():
            return None
        if found.client_id is not None and found.client_id != client_id:
            return None
        if redirect_uri is not None and redirect_uri != found.redirect_uri:
            return None
        if found.code_challenge is not None and not pkce_matches(found.code_challenge, code_verifier):
            return None
        return found

    def issue_token(self, client_id: str, oem: Oem, vin: str) -> Token:
        now = self.now()
        token = Token(
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            client_id=client_id,
            oem=oem,
            vin=vin,
            expires_at=now + self.config.access_token_ttl,
            refresh_expires_at=now + self.config.refresh_token_ttl,
        )
        self.tokens[token.access_token] = token
        self.refresh_tokens[token.refresh_token] = token
        return token

    def rotate(self, refresh_token: str, client_id: str) -> Token | None:
        """Refresh tokens are single-use: the old pair dies, a new pair is issued."""
        old = self.refresh_tokens.pop(refresh_token, None)
        if old is None or old.revoked or old.client_id != client_id or old.refresh_expires_at <= self.now():
            return None
        old.revoked = True
        return self.issue_token(client_id, old.oem, old.vin)

    def bearer(self, header: str | None, oem: Oem) -> tuple[Token | None, str]:
        """The live token in an Authorization header, or None and why not."""
        if not header or not header.startswith("Bearer "):
            return None, "missing"
        token = self.tokens.get(header.removeprefix("Bearer ").strip())
        if token is None or token.revoked or token.oem is not oem:
            return None, "invalid"
        if token.expires_at <= self.now():
            return None, "expired"
        return token, "ok"

    def expire_tokens(self, vin: str | None = None) -> int:
        """Server-side expiry of live access tokens (all, or one vehicle's)."""
        count = 0
        for token in self.tokens.values():
            if not token.revoked and (vin is None or token.vin == vin) and token.expires_at > self.now():
                token.expires_at = self.now()
                count += 1
        return count

    # -- rate limits and faults ---------------------------------------------------------
    def over_rate(self, access_token: str) -> bool:
        """Fixed-window limit per access token (SimConfig.rate_limit per rate_window)."""
        limit = self.config.rate_limit
        if limit is None:
            return False
        now = self.now()
        start, count = self.windows.get(access_token, (now, 0))
        if now - start >= self.config.rate_window:
            start, count = now, 0
        count += 1
        self.windows[access_token] = (start, count)
        return count > limit

    def add_fault(self, fault: dict[str, Any]) -> Fault:
        seconds = fault.get("seconds")
        created = Fault(
            id=self.next_fault_id,
            kind=fault["kind"],
            api=fault.get("api", "any"),
            remaining=fault.get("count"),
            until=self.now() + seconds if seconds is not None else None,
            retry_after=int(fault.get("retry_after", 1)),
            status=int(fault.get("status", 503)),
            mode=fault.get("mode", "truncated"),
            retry_after_form=fault.get("retry_after_form", "seconds"),
            scope=fault.get("scope", "vehicle"),
        )
        if created.remaining is None and created.until is None:
            created.remaining = 1
        self.next_fault_id += 1
        self.faults.append(created)
        return created

    def take_fault(self, api: str, kinds: tuple[str, ...]) -> Fault | None:
        """Consumes one use of the first live fault of `kinds` aimed at `api`."""
        now = self.now()
        self.faults = [f for f in self.faults if f.live(now)]
        for fault in self.faults:
            if fault.kind in kinds and fault.api in (api, "any"):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def record(self, api: str, method: str, path: str, status: int) -> None:
        self.stats.requests[api] = self.stats.requests.get(api, 0) + 1
        self.log.append({"at": time.time(), "api": api, "method": method, "path": path, "status": status})
