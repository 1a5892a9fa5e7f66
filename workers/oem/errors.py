"""What can go wrong talking to an automaker's cloud, each with a stable reason code.

Transient errors (rate limits, outages) are retried inside the connector with backoff; when
they outlast the retry budget they reach the caller, which may retry later (a Celery task
retries with `retry_after` as its countdown). The others are final for this request.
"""

from __future__ import annotations


class OemError(Exception):
    """Base of every connector error; `reason` is stable, `transient` says whether a later
    retry may succeed."""

    reason = "oem_error"
    transient = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


#: What a 429 limits, as the API says: calls to this vehicle, or the whole application's.
VEHICLE_SCOPE = "vehicle"
CONNECTION_SCOPE = "connection"


class RateLimitedError(OemError):
    """The OEM answered 429 for longer than the retry budget; retry after `retry_after` s.
    `scope`: VEHICLE_SCOPE (this vehicle's calls) or CONNECTION_SCOPE (every call of the
    application at this automaker)."""

    reason = "oem_rate_limited"
    transient = True

    def __init__(self, detail: str, retry_after: float | None, scope: str = VEHICLE_SCOPE) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.scope = scope


class UnavailableError(OemError):
    """5xx answers, timeouts or refused connections outlasted the retry budget."""

    reason = "oem_unavailable"
    transient = True


class MalformedPayloadError(OemError):
    """The OEM answered 2xx with a body that is not what its API promises; nothing is stored."""

    reason = "oem_malformed"
    transient = True


class ReauthorizationRequiredError(OemError):
    """The tokens are dead (refresh refused): the owner must consent again."""

    reason = "oem_reauth_required"


class OemRequestError(OemError):
    """The OEM refused the request itself (4xx other than 401/429): retrying will not help."""

    reason = "oem_request_refused"


class InvalidGrantError(OemRequestError):
    """The OAuth server refused a code or refresh token (unknown, used, expired)."""

    reason = "oem_invalid_grant"


class NotCapableError(OemError):
    """The vehicle or the API cannot do this (no such signal, no such command)."""

    reason = "oem_not_capable"


class CommandRejectedError(OemError):
    """The vehicle received the command and refused it."""

    reason = "oem_command_rejected"


class AmbiguousVehicleError(OemError):
    """The consent covers no vehicle, or more than one: onboarding needs exactly one."""

    reason = "oem_ambiguous_vehicle"


class AuthExpiredError(OemError):
    """401 on a vehicle call: refresh the tokens and try once more (internal to connectors)."""

    reason = "oem_token_expired"
    transient = True


class VehicleAsleepError(OemError):
    """The car is asleep (Tesla 408): wake it and try again (internal to connectors)."""

    reason = "oem_vehicle_asleep"
    transient = True
