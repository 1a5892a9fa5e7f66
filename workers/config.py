"""Every setting of the workers, read from the environment in one place (DESIGN.md §4).

Nothing else in `workers/` reads `os.environ`: a process reads its settings once
(`get_settings()`) and builds its `Runtime` from them (workers/runtime.py), which hands them
to the services it builds. Tests override with `use_settings(Settings(...))` (or
`override_settings(**changes)`), which replaces the cached instance for the whole process.
This module imports nothing of the workers: every other module may import it.

Names are the environment variables, case-insensitive: `RPC_URL`, `DATABASE_URL`,
`BROKER_URL`, `RESULT_BACKEND`, `SETTLER_KEY`, `ORACLE_KEY`, `DEPLOYMENT_FILE`,
`CONFIRMATIONS`, `EPOCH_SECONDS`, `LOG_RANGE_*`, … Other modules add their own fields here
(gateway, OEM simulator) in their own section.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository checkout the workers run from: default home of the database file, the
#: deployment manifests and the compiled artifacts.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Where `make deploy` writes one manifest per network (DESIGN.md §5).
DEPLOYMENTS_DIR = PROJECT_ROOT / "deployments"


class GovernanceParams(BaseModel):
    """The DAO's clock (DimoGovernor and DimoTimelock at deployment; seconds, the token's
    ERC-6372 clock is the timestamp)."""

    model_config = ConfigDict(frozen=True)

    #: Seconds from a proposal to the snapshot of votes and the start of voting.
    voting_delay: int = Field(ge=0)
    #: Seconds voting stays open.
    voting_period: int = Field(ge=1)
    #: Votes (DIMO base units, staked included) needed to propose.
    proposal_threshold: int = Field(ge=0)
    #: Quorum: percent of the DIMO supply at the snapshot voting for or abstaining.
    quorum_percent: int = Field(ge=0, le=100)
    #: Seconds between queueing a passed proposal and executing it (the timelock's minDelay).
    timelock_delay: int = Field(ge=0)


#: Production DAO: a day to see a proposal coming, five to vote, two to leave before it runs.
PRODUCTION_GOVERNANCE = GovernanceParams(
    voting_delay=86_400,
    voting_period=5 * 86_400,
    proposal_threshold=100_000 * 10**18,
    quorum_percent=4,
    timelock_delay=2 * 86_400,
)
#: Devnet DAO: the same rules on a short clock (the demo and tests move anvil's clock anyway).
DEVNET_GOVERNANCE = GovernanceParams(
    voting_delay=60, voting_period=600, proposal_threshold=0, quorum_percent=4, timelock_delay=300
)

#: anvil's first test account: the devnet deployer, which also holds SETTLER_ROLE there.
ANVIL_FIRST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#: anvil's second test account: the devnet OEM oracle.
ANVIL_SECOND_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

#: Metered calls' database threads per gateway process on PostgreSQL (GATEWAY_DB_THREADS).
DEFAULT_DB_THREADS = 4
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / '.run' / 'workers.db'}"

#: Devnet-only Fernet key for OEM tokens at rest (like the anvil keys: public, never for real data).
DEVNET_OEM_TOKEN_KEY = "PSsjyd-6KPCnRNAi21Kc5cJE97M00GxDnKmwrvGl0Is="
#: The OEM simulator's default OAuth client (devkit/simulator/app.py).
SIMULATOR_CLIENT_ID = "dimo-workers"
SIMULATOR_CLIENT_SECRET = "sim-secret"


class OemConnection(BaseModel):
    """One automaker connection: its on-chain VehicleId connection id, which API it speaks
    and where, and the workers' OAuth client there. Unset client and rate fields fall back to
    OEM_CLIENT_ID, OEM_CLIENT_SECRET and OEM_PACE_<KIND> (and its burst)."""

    model_config = ConfigDict(frozen=True)

    connection_id: int = Field(ge=1)
    kind: Literal["smartcar", "tesla"]
    name: str
    #: Vehicle API base URL (Smartcar: API_ORIGIN; Tesla: the Fleet API server).
    api_url: str
    #: Where the consent page lives (Smartcar: CONNECT_ORIGIN; Tesla: the auth server).
    auth_url: str
    #: The OAuth token endpoint (full URL).
    token_url: str
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: PKCE (RFC 7636, S256) on onboarding; None: the API family's documented default
    #: (Tesla: yes; Smartcar: no, its Connect documents no code_challenge).
    pkce: bool | None = None
    rate_per_second: float | None = Field(default=None, gt=0)
    rate_burst: int | None = Field(default=None, ge=1)


class Settings(BaseSettings):
    """The workers' configuration. Defaults are the embedded local stack (anvil, SQLite, Redis)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- chain -------------------------------------------------------------------------
    rpc_url: str = "http://127.0.0.1:8545"
    #: Seconds before one JSON-RPC request is abandoned (and retried with backoff).
    rpc_timeout: float = 30.0
    #: The deployment manifest; empty: deployments/<network>.json for the connected chain.
    deployment_file: Path | None = None
    #: The workers' hot wallet with SETTLER_ROLE on Marketplace.
    settler_key: SecretStr = SecretStr(ANVIL_FIRST_KEY)
    #: The OEM oracle key that signs MintAttestations.
    oracle_key: SecretStr = SecretStr(ANVIL_SECOND_KEY)
    #: A production deployment grants SETTLER_ROLE to this address (empty: SETTLER_KEY's).
    settler_address: str | None = None
    #: A production deployment grants VehicleId's MINTER_ROLE to this address (empty: nobody;
    #: cars are minted on oracle attestations).
    minter_address: str | None = None
    #: A production deployment grants Staking's SLASHER_ROLE to this address beside the
    #: timelock (a slashing council whose proposals freeze at once; empty: the timelock only).
    slasher_address: str | None = None
    #: A production deployment grants GUARDIAN_ROLE on Staking and Marketplace to this address
    #: (empty: no guardian until the DAO grants one).
    guardian_address: str | None = None
    #: Gas limit for workers' transactions.
    tx_gas_limit: int = 2_000_000
    #: Tip per gas (wei) on workers' transactions when the node suggests none
    #: (eth_maxPriorityFeePerGas is asked first).
    tx_priority_fee: int = 1_000_000_000
    #: Seconds a sent transaction may wait in the pool before it is replaced at its nonce with
    #: fees raised by 12.5 % (workers/chain/outbox.py).
    tx_replace_after: float = Field(default=60.0, gt=0)
    #: Seconds to wait for a receipt before the task gives up this attempt (and retries).
    tx_receipt_timeout: float = 120.0

    # --- database and broker --------------------------------------------------------------
    database_url: str = DEFAULT_DATABASE_URL
    #: Echo SQL (debugging).
    database_echo: bool = False
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None
    #: Seconds after which a broker re-delivers a task whose worker died without acking it.
    broker_visibility_timeout: int = 3600
    #: The Redis the signal store publishes committed observations to and every gateway's
    #: stream hub subscribes to (workers/signals/feed.py); empty: BROKER_URL when the broker
    #: is a Redis, else no feed (streams then re-read the store once a period).
    signals_feed_url: str | None = None

    # --- indexer -------------------------------------------------------------------------
    #: Blocks behind the head a block must be before the indexer applies it.
    confirmations: int = Field(default=2, ge=0)
    #: Blocks below the head the indexer keeps per-block undo records for; a reorg deeper
    #: than this is refused (re-index from scratch).
    reorg_window: int = Field(default=128, ge=1)
    #: First eth_getLogs range (blocks); it adapts between LOG_RANGE_MIN and LOG_RANGE_MAX.
    log_range_initial: int = Field(default=2_000, ge=1)
    log_range_min: int = Field(default=1, ge=1)
    log_range_max: int = Field(default=50_000, ge=1)
    #: Stop shrinking / give up a range after this many consecutive failures.
    log_range_max_failures: int = Field(default=12, ge=1)
    #: At most this many blocks are applied by one indexer.sync run (keeps tasks short).
    sync_max_blocks: int = Field(default=1_000_000, ge=1)
    #: Seconds between indexer.sync runs in the beat schedule.
    sync_interval: float = 3.0
    #: The index is stale, and every serving endpoint answers 503 `index_stale`, when the
    #: indexed block is more than this many blocks behind the chain head the indexer last read …
    index_max_blocks_behind: int = Field(default=64, ge=0)
    #: … or its timestamp more than this many seconds behind the head's, or the indexer's last
    #: health report (workers/indexer/health.py) is older than this (it stopped ticking).
    index_max_seconds_behind: float = Field(default=120.0, gt=0)
    #: Seconds a gateway process reuses its reading of the indexer's health.
    index_health_ttl: float = Field(default=1.0, ge=0)

    # --- settlement ---------------------------------------------------------------------
    #: Seconds per settlement period (usage is counted and vesting paid per period):
    #: period = floor(timestamp / EPOCH_SECONDS).
    epoch_seconds: int = Field(default=86_400, ge=1)
    #: Seconds between settlement sweeps (closing ended periods, proposing and accepting
    #: roots) in the beat schedule.
    settlement_interval: float = 300.0
    #: At most this many periods of one product are closed per database transaction.
    settlement_batch_periods: int = Field(default=400, ge=1)
    #: Seconds after its end before a period closes, so usage still being committed for it
    #: (a call answered at the last second) is counted in it.
    settlement_grace_seconds: int = Field(default=300, ge=0)

    # --- tasks ------------------------------------------------------------------------------
    #: Retries of a failing task, with exponential backoff (capped) and full jitter.
    task_max_retries: int = 8
    task_retry_backoff_max: int = 300
    #: Test-only fault injection: the process SIGKILLs itself at this named step
    #: ("settlement.propose:before_send", …) once; the marker file records that it fired.
    fault_point: str = ""
    fault_marker: Path | None = None

    # --- gateway (workers/gateway, workers/access, workers/datasets) --------------------
    #: Where `python -m workers.gateway` listens.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8000, ge=0, le=65535)
    #: uvicorn worker processes (one per core on PostgreSQL; 1 on SQLite, whose writers
    #: queue on one file lock).
    gateway_workers: int = Field(default=1, ge=1)
    #: Threads per gateway process running metered calls' statements off the event loop (so
    #: calls waiting on PostgreSQL overlap); 0: on the event loop; empty: 0 on SQLite (its
    #: statements never wait on a network, and a thread hop costs more CPU than they do), 4 on
    #: PostgreSQL. At most the connection pool's 15 connections.
    gateway_db_threads: int | None = Field(default=None, ge=0, le=15)
    #: The EIP-4361 domains (RFC 3986 authorities: host[:port]) a SIWE message may name: the
    #: origins of the dApps allowed to sign users in here (the web app at /app is served from
    #: the gateway's own origin). JSON list; the first is the default of POST /auth/nonce.
    siwe_domains: list[str] = Field(
        default_factory=lambda: ["localhost:8000", "127.0.0.1:8000"], min_length=1
    )
    #: The chain id SIWE messages must name; empty: the deployment's (the chain at RPC_URL).
    siwe_chain_id: int | None = None
    #: Browser origins (scheme://host[:port]) allowed to call the gateway cross-origin (CORS);
    #: JSON list; empty: none (the web app at /app is same-origin and needs none).
    cors_origins: list[str] = Field(default_factory=list)
    #: The built web app served under /app (`make setup` builds it: webapp/ -> webapp/dist).
    webapp_dir: Path = PROJECT_ROOT / "webapp" / "dist"
    #: The JSON-RPC URL the web app's browser reads the chain from; empty: RPC_URL.
    webapp_rpc_url: str | None = None
    #: Seconds a SIWE nonce (and its message) stays usable.
    siwe_nonce_ttl: int = Field(default=300, ge=1)
    #: Seconds a bearer token stays valid at most (a SIWE message's Expiration Time may end it
    #: sooner, never later).
    session_ttl: int = Field(default=86_400, ge=1)
    #: HMAC key of the bearer tokens (a devnet default; set TOKEN_SECRET in production).
    token_secret: SecretStr = SecretStr("dimo-devnet-gateway-token-secret-change-me")
    #: Per-token rate limit: sustained requests a second and burst size (token bucket).
    rate_limit_per_second: float = Field(default=100.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    #: Seconds an access decision's facts (from the indexed projections) may be reused;
    #: the cache is also keyed on the indexer's last applied block.
    access_cache_ttl: float = Field(default=1.0, ge=0)
    #: Sign-in rate limit per client address (POST /auth/nonce and /auth/verify), a second.
    auth_rate_limit_per_second: float = Field(default=5.0, gt=0)
    auth_rate_limit_burst: int = Field(default=20, ge=1)
    #: A Redis through which every gateway process shares the per-token rate limits and live
    #: stream counts (run several GATEWAY_WORKERS on PostgreSQL); empty: each process alone.
    gateway_redis_url: str | None = None
    #: Live streams one bearer token may hold open at once (per gateway process unless
    #: GATEWAY_REDIS_URL is set: then in all).
    stream_max_per_token: int = Field(default=256, ge=1)
    #: Seconds between SSE keep-alive comments on live streams.
    stream_ping_seconds: float = Field(default=15.0, gt=0)
    #: Buyers' stream period floor (seconds) when a product's refreshSeconds is 0.
    stream_min_refresh: float = Field(default=1.0, gt=0)
    #: Seconds between access.sweep runs (expiring orders and credits) in the beat schedule.
    sweep_interval: float = Field(default=60.0, gt=0)
    #: Differentially private datasets (workers/datasets/privacy.py): the privacy budget
    #: (epsilon) a Dataset order gets at its first dataset job, and what each job spends of it.
    dataset_epsilon_per_order: float = Field(default=1.0, gt=0)
    dataset_epsilon_per_query: float = Field(default=0.25, gt=0)

    # --- signal storage (workers/signals/storage.py) -----------------------------------------
    #: Days of raw signal history kept (whole day partitions dropped past it on PostgreSQL,
    #: rows deleted by range on SQLite); 0 keeps it all.
    signals_retention_days: int = Field(default=30, ge=0)
    #: Days the hourly roll-up of numeric signals (made as raw history is dropped) is kept;
    #: 0 makes none.
    signals_rollup_retention_days: int = Field(default=400, ge=0)
    #: Day partitions of the history made ahead of today on PostgreSQL.
    signals_partitions_ahead: int = Field(default=7, ge=1)
    #: Seconds between datasets.signal_storage runs (partitions, retention, roll-up) in the beat.
    signals_maintenance_interval: float = Field(default=3600.0, gt=0)

    # --- OEM integration (workers/oem) ------------------------------------------------------
    #: The OEM cloud simulator the default connections point at (the local stack's automaker).
    oem_simulator_url: str = "http://127.0.0.1:8700"
    #: OEM connections (JSON list of OemConnection); empty: connection 1 Smartcar-style and
    #: connection 2 Tesla-style, both at OEM_SIMULATOR_URL.
    oem_connections: list[OemConnection] = Field(default_factory=list)
    oem_client_id: str = SIMULATOR_CLIENT_ID
    oem_client_secret: SecretStr = SecretStr(SIMULATOR_CLIENT_SECRET)
    #: The gateway's public base URL: OAuth redirect URI = <base>/v1/oem/<connectionId>/callback.
    oem_callback_base_url: str = "http://127.0.0.1:8000"
    #: Fernet keys for OEM tokens at rest (JSON list): the first encrypts, all decrypt.
    oem_token_keys: list[SecretStr] = Field(default_factory=lambda: [SecretStr(DEVNET_OEM_TOKEN_KEY)])
    #: Seconds an onboarding `state` stays valid (single-use; expired ones are purged).
    oem_state_ttl: int = Field(default=600, ge=1)
    #: Seconds from issuing a MintAttestation to its deadline.
    oem_attestation_ttl: int = Field(default=3600, ge=60)
    #: Client-side pace of each connection by API family (calls per second, burst), unless the
    #: connection sets its own in OEM_CONNECTIONS. Shared by all processes through
    #: OEM_RATE_LIMIT_REDIS_URL. Neither API publishes an application-wide per-second cap
    #: (Smartcar bills calls per vehicle a month, Tesla per vehicle a day): this is what we ask.
    oem_pace_smartcar: float = Field(default=20.0, gt=0)
    oem_pace_smartcar_burst: int = Field(default=40, ge=1)
    oem_pace_tesla: float = Field(default=20.0, gt=0)
    oem_pace_tesla_burst: int = Field(default=40, ge=1)
    #: A Redis through which every worker process shares each OEM's pace; empty: per process.
    oem_rate_limit_redis_url: str | None = None
    #: Attempts per OEM call and the backoff between them (exponential, full jitter).
    oem_max_attempts: int = Field(default=5, ge=1)
    oem_backoff_base: float = Field(default=0.25, ge=0)
    oem_backoff_max: float = Field(default=20.0, ge=0)
    #: A Retry-After longer than this is not slept through: the task is retried later instead.
    oem_retry_after_max: float = Field(default=30.0, ge=0)
    #: Refresh OEM access tokens this many seconds before they expire.
    oem_refresh_skew: float = Field(default=60.0, ge=0)
    #: Seconds a remote command may wait in the queue; older ones are dropped, never sent.
    oem_command_ttl: int = Field(default=60, ge=1)
    #: At most this many links of one connection are claimed by one oem.schedule run (fewer
    #: when the connection's pace cannot serve more before the next run).
    oem_schedule_batch: int = Field(default=1_000, ge=1, le=10_000)
    #: Seconds a claimed link stays leased to its queued pull; a pull that dies is claimed
    #: again after it (the pull task expires after half of it).
    oem_pull_lease: int = Field(default=600, ge=10)
    #: Seconds before a link in no active product (or not minted yet) is looked at again.
    oem_schedule_idle: int = Field(default=60, ge=1)
    #: Seconds a 429 without a usable Retry-After holds its vehicle or connection.
    oem_rate_limited_hold: int = Field(default=60, ge=1)
    #: Seconds between oem.schedule runs in the beat schedule.
    oem_schedule_interval: float = 10.0
    #: Device telemetry older than this (seconds, by its signed timestamp) is refused as stale.
    telemetry_max_age: int = Field(default=300, ge=1)
    #: Device telemetry timestamped more than this ahead of the workers' clock is refused.
    telemetry_max_future: int = Field(default=30, ge=0)
    #: An MQTT telemetry message larger than this many bytes is refused (`oversized`).
    telemetry_max_bytes: int = Field(default=16_384, ge=256)
    #: An HTTP telemetry request body larger than this many bytes is refused (413 `oversized`).
    telemetry_max_body_bytes: int = Field(default=1_048_576, ge=256)
    #: At most this many envelopes in one HTTP request (a JSON list).
    telemetry_max_envelopes: int = Field(default=1_000, ge=1)
    #: The MQTT broker devices publish to (`mqtt://[user[:password]@]host:port`, `mqtts://` for
    #: TLS), QoS 1 on
    #: `dimo/devices/{deviceId}/telemetry` (workers/oem/mqtt_ingest.py).
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    #: Devices publish on `<prefix>/devices/{deviceId}/telemetry` (deployments sharing a
    #: broker take one prefix each).
    mqtt_topic_prefix: str = Field(default="dimo", pattern=r"^[^#+$/][^#+]*$")
    #: The ingest's MQTT client id: its persistent session keeps what the broker has not had
    #: acknowledged across restarts (run more processes with one id each, or a shared group).
    mqtt_client_id: str = "dimo-ingest"
    #: The MQTT version the ingest speaks: 5 (Mosquitto; lets the broker keep a whole batch in
    #: flight) or 3.1.1 (the dev kit's embedded amqtt broker speaks only that).
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    #: With a name, ingest processes subscribe as the MQTT 5 shared group `$share/<name>/…`
    #: and the broker spreads devices' messages over them (Mosquitto; not the dev kit's amqtt).
    mqtt_shared_group: str | None = None
    #: Ingest verifies and stores this many messages per transaction at most…
    ingest_batch_size: int = Field(default=2_000, ge=1, le=10_000)
    #: …and waits at most this many seconds for a batch to fill once one message is in.
    ingest_batch_wait: float = Field(default=0.05, ge=0)
    #: Where the ingest process serves its Prometheus metrics (0: not served).
    ingest_metrics_port: int = Field(default=9109, ge=0, le=65535)

    # --- observability (workers/observability, `python -m workers.metrics`) -----------------
    #: Log lines as JSON objects, one a line (`json`), or aligned key=value text (`console`,
    #: what `make demo` and `make up` use).
    log_format: Literal["json", "console"] = "json"
    #: The root log level (DEBUG, INFO, WARNING, …); Celery processes use their `--loglevel`.
    log_level: str = "INFO"
    #: Where `python -m workers.metrics` serves the workers' Prometheus metrics.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9808, ge=0, le=65535)
    #: Celery workers: the directory their processes write counters to (prometheus_client's
    #: multiprocess mode, which reads the same variable; one directory per worker service).
    #: The exporter: the directory whose files, at any depth, it sums. Empty: the workers'
    #: counters stay in each process, unexported.
    prometheus_multiproc_dir: Path | None = None

    # --- environment ------------------------------------------------------------------------
    #: `devnet` (the defaults: anvil keys, public secrets) or `production`, where every secret
    #: must be set: the workers refuse to start on a devnet default (docs/security.md SEC-05).
    environment: Literal["devnet", "production"] = "devnet"

    @model_validator(mode="after")
    def _no_devnet_secrets_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        devnet = Settings.model_construct()
        leaked = [
            name.upper()
            for name in ("token_secret", "settler_key", "oracle_key", "oem_client_secret")
            if getattr(self, name).get_secret_value() == getattr(devnet, name).get_secret_value()
        ]
        if any(key.get_secret_value() == DEVNET_OEM_TOKEN_KEY for key in self.oem_token_keys):
            leaked.append("OEM_TOKEN_KEYS")
        if leaked:
            raise ValueError(
                f"ENVIRONMENT=production but {', '.join(leaked)} still hold the public devnet defaults: "
                "set each to a secret of this deployment"
            )
        return self

    @model_validator(mode="after")
    def _query_within_order_budget(self) -> Settings:
        if self.dataset_epsilon_per_query > self.dataset_epsilon_per_order:
            raise ValueError("DATASET_EPSILON_PER_QUERY must not exceed DATASET_EPSILON_PER_ORDER")
        return self

    @field_validator("siwe_chain_id", "gateway_db_threads", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # SIWE_CHAIN_ID= (empty) means "the deployment's", as the example file documents it.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rpc_url", "broker_url", "database_url")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    def metered_threads(self) -> int:
        """GATEWAY_DB_THREADS, or its default for the database DATABASE_URL names."""
        if self.gateway_db_threads is not None:
            return self.gateway_db_threads
        return 0 if self.database_url.startswith("sqlite") else DEFAULT_DB_THREADS

    def feed_url(self) -> str | None:
        """Where committed observations are published (SIGNALS_FEED_URL, else a Redis broker)."""
        if self.signals_feed_url:
            return self.signals_feed_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else None

    def oem_connection_list(self) -> list[OemConnection]:
        """OEM_CONNECTIONS with defaults filled in, or the two simulator connections."""
        configured = self.oem_connections or self._simulator_connections()
        return [
            c.model_copy(
                update={
                    "client_id": c.client_id or self.oem_client_id,
                    "client_secret": c.client_secret or self.oem_client_secret,
                    "rate_per_second": c.rate_per_second or self.oem_pace(c.kind)[0],
                    "rate_burst": c.rate_burst or self.oem_pace(c.kind)[1],
                }
            )
            for c in configured
        ]

    def oem_pace(self, kind: str) -> tuple[float, int]:
        """OEM_PACE_<KIND> and its burst: an API family's default pace (calls/s, burst)."""
        if kind == "tesla":
            return self.oem_pace_tesla, self.oem_pace_tesla_burst
        return self.oem_pace_smartcar, self.oem_pace_smartcar_burst

    def oem_connection(self, connection_id: int) -> OemConnection:
        for connection in self.oem_connection_list():
            if connection.connection_id == connection_id:
                return connection
        raise KeyError(f"no OEM connection {connection_id} in OEM_CONNECTIONS")

    def _simulator_connections(self) -> list[OemConnection]:
        base = self.oem_simulator_url.rstrip("/")
        return [
            OemConnection(
                connection_id=1,
                kind="smartcar",
                name="smartcar",
                api_url=base,
                auth_url=base,
                token_url=f"{base}/oauth/token",
                # the simulator's OAuth server verifies PKCE on both of its APIs
                pkce=True,
            ),
            OemConnection(
                connection_id=2,
                kind="tesla",
                name="tesla",
                api_url=base,
                auth_url=base,
                token_url=f"{base}/oauth2/v3/token",
            ),
        ]


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current  # noqa: PLW0603
    if _current is None:
        _current = Settings()
    return _current


def use_settings(settings: Settings | None) -> None:
    """Replaces the process-wide settings (None: read the environment again on next use)."""
    global _current  # noqa: PLW0603
    _current = settings


@contextmanager
def override_settings(**changes: Any) -> Iterator[Settings]:
    """Within the block, `get_settings()` returns the current settings with `changes`."""
    previous = _current
    base = previous if previous is not None else Settings()
    updated = base.model_copy(update=changes)
    use_settings(updated)
    try:
        yield updated
    finally:
        use_settings(previous)
