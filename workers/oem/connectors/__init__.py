"""Automaker-cloud connectors: one interface (`Connector`), one implementation per API
family, built from the settings of an on-chain connection id."""

from __future__ import annotations

import threading

from workers.config import OemConnection, Settings, get_settings
from workers.oem.connectors.base import Command, CommandResult, Connector, OemVehicle
from workers.oem.connectors.smartcar import SmartcarConnector
from workers.oem.connectors.tesla import TeslaConnector
from workers.oem.ratelimit import RateLimiter, RedisTokenBucket, TokenBucket
from workers.oem.retry import RetryPolicy

__all__ = [
    "Command",
    "CommandResult",
    "Connector",
    "OemVehicle",
    "SmartcarConnector",
    "TeslaConnector",
    "callback_uri",
    "connector_for",
    "retry_policy",
]

KINDS: dict[str, type[Connector]] = {"smartcar": SmartcarConnector, "tesla": TeslaConnector}

# One bucket per connection per process, shared by every connector built for it.
_BUCKETS: dict[tuple[int, float, int, str], RateLimiter] = {}
_BUCKETS_LOCK = threading.Lock()


def callback_uri(settings: Settings, connection_id: int) -> str:
    """The OAuth redirect URI of a connection: the gateway's callback endpoint (DESIGN.md §4)."""
    return f"{settings.oem_callback_base_url.rstrip('/')}/v1/oem/{connection_id}/callback"


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.oem_max_attempts,
        backoff_base=settings.oem_backoff_base,
        backoff_max=settings.oem_backoff_max,
        retry_after_max=settings.oem_retry_after_max,
        refresh_skew=settings.oem_refresh_skew,
    )


def _bucket(connection: OemConnection, shared_url: str | None) -> RateLimiter:
    """The connection's pace: shared through Redis when OEM_RATE_LIMIT_REDIS_URL is set,
    else this process's own bucket."""
    rate = connection.rate_per_second or 5.0
    burst = connection.rate_burst or 10
    key = (connection.connection_id, rate, burst, shared_url or "")
    with _BUCKETS_LOCK:
        if key not in _BUCKETS:
            if shared_url:
                name = f"dimo:oem:rate:{connection.connection_id}"
                _BUCKETS[key] = RedisTokenBucket(shared_url, name, rate, burst)
            else:
                _BUCKETS[key] = TokenBucket(rate, burst)
        return _BUCKETS[key]


def connector_for(connection_id: int, settings: Settings | None = None) -> Connector:
    """The connector of on-chain connection `connection_id` (KeyError if not configured)."""
    settings = settings or get_settings()
    connection = settings.oem_connection(connection_id)
    return KINDS[connection.kind](
        connection,
        callback_uri(settings, connection_id),
        policy=retry_policy(settings),
        limiter=_bucket(connection, settings.oem_rate_limit_redis_url),
    )
