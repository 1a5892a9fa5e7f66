"""What one gateway app holds: its runtime (settings, database, the chain handle with its
views: workers/runtime.py), metrics, rate limiters, the access-facts cache and the live
streams' hub. Built once per
app (no module-level state)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.requests import Request

from workers.access.facts import FactsCache, IndexedFacts, StakingCheck
from workers.chain.views import Chain
from workers.config import Settings
from workers.db.session import Database
from workers.gateway.auth import Identity, SessionGuard, decode_token
from workers.gateway.hotpath import MeteredStore
from workers.gateway.hub import StreamHub
from workers.gateway.metrics import GatewayMetrics
from workers.gateway.ratelimit import (
    Limiter,
    RateLimiter,
    RedisRateLimiter,
    RedisStreamSlots,
    Slots,
    StreamSlots,
)
from workers.indexer import health
from workers.protocol import Role
from workers.runtime import Runtime
from workers.tokenbucket import redis_client

T = TypeVar("T")

#: Verified bearer tokens remembered per process (forgotten all at once past it).
VERIFIED_TOKENS = 10_000


@dataclass
class GatewayState:
    runtime: Runtime
    #: Answers `Staking.isActive(account, role)` at a block; default: the chain view.
    staking_check: StakingCheck | None = None
    metrics: GatewayMetrics = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        self.metrics = GatewayMetrics(settings.prometheus_multiproc_dir)
        self.limiter: Limiter
        self.auth_limiter: Limiter
        #: Live streams open per bearer session.
        self.stream_slots: Slots
        auth_rate, auth_burst = settings.auth_rate_limit_per_second, settings.auth_rate_limit_burst
        if settings.gateway_redis_url:
            client = redis_client(settings.gateway_redis_url)
            self.limiter = RedisRateLimiter(
                client, "gateway:rate:", settings.rate_limit_per_second, settings.rate_limit_burst
            )
            self.auth_limiter = RedisRateLimiter(client, "gateway:auth-rate:", auth_rate, auth_burst)
            self.stream_slots = RedisStreamSlots(client, "gateway:streams:", settings.session_ttl)
        else:
            self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
            self.auth_limiter = RateLimiter(auth_rate, auth_burst)
            self.stream_slots = StreamSlots()
        event.listen(self.database.engine, "before_cursor_execute", self._count_statement)
        self.facts_cache = FactsCache(self.settings.access_cache_ttl)
        self.token_secret = self.settings.token_secret.get_secret_value().encode()
        #: Bearer tokens whose signature verified, by token (a token never changes).
        self._verified: dict[str, Identity] = {}
        self._lazy: dict[str, Any] = {}
        self._lazy_lock = threading.Lock()
        self._health: tuple[float, health.Health] | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def database(self) -> Database:
        return self.runtime.database

    @property
    def sessions(self) -> SessionGuard:
        """Whether a bearer token's session is still live (read on every authenticated request)."""
        return self.lazy("sessions", lambda: SessionGuard(self.database, self.metrics.db_statements.inc))

    @property
    def metered_store(self) -> MeteredStore:
        """The metered call's two statements and their database threads (hotpath.py)."""
        return self.lazy(
            "metered_store",
            lambda: MeteredStore(
                self.database.engine, self.settings.metered_threads(), self.metrics.db_statements.inc
            ),
        )

    @property
    def chain(self) -> Chain:
        """The chain handle (connected on first use: the gateway starts without a chain)."""
        return self.runtime.chain

    @property
    def stream_hub(self) -> StreamHub:
        """The live streams' hub (workers/gateway/hub.py), subscribed to the signal feed."""
        return self.lazy(
            "stream_hub",
            lambda: StreamHub(
                self.settings.feed_url(),
                self.metrics,
                poll_seconds=self.settings.stream_min_refresh,
                recheck_seconds=self.settings.access_cache_ttl,
            ),
        )

    def close(self) -> None:
        """Stops the stream hub's subscriber and the metered calls' database threads (if they
        started) and closes the runtime."""
        hub = self._lazy.get("stream_hub")
        if hub is not None:
            hub.close()
        metered = self._lazy.get("metered_store")
        if metered is not None:
            metered.close()
        self.metrics.close()
        self.runtime.close()

    def index_health(self) -> health.Health:
        """The index's health (workers/indexer/health.py), re-read from the indexer's row at
        most every INDEX_HEALTH_TTL seconds."""
        cached = self._health
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.settings.index_health_ttl:
            return cached[1]
        with self.database.session(read_only=True) as session:
            current = health.assess(health.read(session), self.settings)
        self._health = (now, current)
        return current

    def _count_statement(self, *_: Any) -> None:
        self.metrics.db_statements.inc()

    def identity_of(self, token: str) -> Identity:
        """`decode_token`, its signature verified once per token and process (the expiry on
        every call)."""
        identity = self._verified.get(token)
        if identity is None or time.time() >= identity.expires_at:
            identity = decode_token(token, self.token_secret)
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = identity
        return identity

    def lazy(self, name: str, build: Callable[[], T]) -> T:
        """A per-app object built on first use (clients that need the chain, …)."""
        with self._lazy_lock:
            if name not in self._lazy:
                self._lazy[name] = build()
            return self._lazy[name]

    def _chain_staking_check(self, account: str, role: Role, block: int) -> bool:
        # The chain is reached only when a decision needs an operator's or buyer's activity.
        return self.chain.is_active(account, role, block)

    def facts(self, session: Session) -> IndexedFacts:
        check = self.staking_check or self._chain_staking_check
        return IndexedFacts(session, self.facts_cache, check)


def gateway_state(request: Request) -> GatewayState:
    return request.app.state.gateway
