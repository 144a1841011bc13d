"""All configuration, read once from `ASYNCFLOW_*` environment variables.

Every field is an environment variable named `ASYNCFLOW_` + the field name in
upper case, e.g. `database_url` is `ASYNCFLOW_DATABASE_URL`.
"""

import hashlib
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from asyncflow_backend.config.constants import DEFAULT_MAX_RUN_MEMORY_MB, MIN_RUN_MEMORY_MB
from asyncflow_backend.config.environment import ENV_PREFIX
from asyncflow_backend.schemas.limits import ScenarioLimits

__all__ = ["ENV_PREFIX", "Settings", "get_settings", "key_digest"]
_DEFAULT_LIMITS = ScenarioLimits()


def key_digest(key: str) -> str:
    """The SHA-256 of an API key, in hex: what the service keeps instead of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _comma_separated(value: Any) -> Any:
    # Lists come as one variable, `a,b,c`, rather than as JSON.
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseSettings):
    """The service's configuration; defaults give an embedded setup that needs nothing installed."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Persistence and execution.
    database_url: str = Field(
        default="sqlite+aiosqlite:///./asyncflow.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///FILE or "
        "postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB.",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Database connections the API keeps open (plus up to 10 more at peaks); "
        "requests beyond them wait for a free one.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for the job queue and `asyncflow worker` processes; "
        "unset: the API runs jobs in a local process pool.",
    )
    local_workers: int = Field(default=1, ge=1, description="Processes of the local pool.")
    queue_name: str = Field(
        default="asyncflow",
        pattern=r"^[A-Za-z_][A-Za-z0-9._-]*$",
        description="Name of the Redis job queue, also the prefix of its Redis keys.",
    )
    run_time_limit_s: float = Field(
        default=600.0, gt=0, description="Wall time a run may take before it fails."
    )
    max_run_memory_mb: int = Field(
        default=DEFAULT_MAX_RUN_MEMORY_MB,
        ge=MIN_RUN_MEMORY_MB,
        description="Resident memory, in MB, one run may add to the process running it "
        "(a worker, or `asyncflow run`); a run that needs more fails at once with that "
        "reason, and its worker takes the next run.",
    )
    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A running run whose worker has not reported for this long may be "
        "taken over by another worker.",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Executions a run may start before it is given up."
    )
    stranded_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A run queued this long, or running with a lease that ran out this long "
        "ago, and with no message in the job queue (Redis lost it, or a pool lost it), is "
        "queued again; the API looks every half of this.",
    )
    worker_heartbeat_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A Redis worker silent for this long is dead: its unfinished "
        "jobs go back to the queue.",
    )
    worker_maintenance_chance: float = Field(
        default=0.01,
        gt=0,
        le=1,
        description="Probability that a queue command also looks for dead workers' jobs.",
    )

    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Added to the CPU niceness of worker processes (local pool and "
        "`asyncflow worker`), so that the API on the same host stays responsive.",
    )
    worker_sched_idle: bool = Field(
        default=True,
        description="Run worker processes (local pool and `asyncflow worker`) under Linux's "
        "SCHED_IDLE policy: they get the CPU only when nothing else on the host wants it, "
        "so the API answers at once even while every core simulates. No effect elsewhere.",
    )

    chart_cache_mb: float = Field(
        default=64.0,
        ge=0,
        le=100_000,
        description="Memory each API process keeps rendered charts in (PNG and SVG of "
        "succeeded runs, least recently used out first); 0: charts are drawn every time.",
    )

    # Access and exposure.
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated API keys; each /api/v1 call then needs one in "
        "X-API-Key and sees only its own runs. Kept as SHA-256 digests only. "
        "Unset: the API is open (for local use).",
        repr=False,
    )
    submit_rate_limit: str = Field(
        default="120/minute",
        description="Scenarios submitted or validated per API key (or per client address "
        "when the API is open), e.g. 60/minute or 10/second; shared through Redis when it is "
        "configured. Empty: no limit.",
    )
    submit_rate_unit_bytes: int = Field(
        default=65_536,
        ge=1024,
        description="A submission or validation spends one unit of ASYNCFLOW_SUBMIT_RATE_LIMIT "
        "per started this many bytes of JSON body, and per started sixth of it of YAML (six "
        "times the parsing CPU per byte), so large bodies count for the work they cost.",
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated origins allowed to call the API from a browser; "
        "unset: no CORS headers at all.",
    )

    # Input limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_nodes: int = Field(default=_DEFAULT_LIMITS.max_nodes, ge=1)
    max_edges: int = Field(default=_DEFAULT_LIMITS.max_edges, ge=1)
    max_endpoints: int = Field(default=_DEFAULT_LIMITS.max_endpoints, ge=1)
    max_steps: int = Field(default=_DEFAULT_LIMITS.max_steps, ge=1)
    max_events: int = Field(default=_DEFAULT_LIMITS.max_events, ge=0)
    max_horizon_s: float = Field(default=_DEFAULT_LIMITS.max_horizon_s, gt=0)
    max_expected_requests: float = Field(default=_DEFAULT_LIMITS.max_expected_requests, gt=0)
    max_samples: int = Field(
        default=_DEFAULT_LIMITS.max_samples,
        ge=1,
        description="(horizon / sample_period_s) x number of sampled series.",
    )
    max_scheduled_events: float = Field(
        default=_DEFAULT_LIMITS.max_scheduled_events,
        gt=0,
        description="Events the engine would schedule: requests x events per request, "
        "sampler ticks, generator windows and injection marks.",
    )

    max_experiment_replications: int = Field(
        default=10_000,
        ge=2,
        description="Most replications one experiment may run, counting every sweep point "
        "and every search step at its cap.",
    )

    max_sweep_validation_mb: float = Field(
        default=25.0,
        gt=0,
        le=1_000_000,
        description="Most scenario JSON, in MB, that validating a submitted sweep may parse: "
        "its points x the size of its scenario (each point is validated in full before "
        "anything runs, at about a quarter of a second of CPU per MB).",
    )
    max_replication_samples: int = Field(
        default=0,
        ge=0,
        le=100_000_000,
        description="Most sampled-series samples one replication of an experiment stores; a "
        "replication that recorded more stores none, only its results and summary metrics. "
        "0: replications store no series.",
    )
    storage_quota_mb: float = Field(
        default=10_240.0,
        ge=0,
        le=1e9,
        description="Most MB the runs and experiments of one API key (of everyone, when the API "
        "is open) may store; a submission beyond it is refused with 403 until some are deleted. "
        "0: no quota.",
    )
    retention_days: float = Field(
        default=0.0,
        ge=0,
        le=36_500,
        description="Runs and experiments that finished this many days ago are deleted, with "
        "their results and series, by a sweep every hour. 0: everything is kept.",
    )
    experiment_queue_ahead: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Replications of one experiment queued or running at once; the rest are "
        "created as those finish, so submitting an experiment costs the same whatever its "
        "replication count.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keep_key_digests(cls, value: Any) -> Any:
        keys = _comma_separated(value)
        if not isinstance(keys, list | tuple):
            return keys
        return tuple(key_digest(key) for key in keys)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        return _comma_separated(value)

    @field_validator("submit_rate_limit")
    @classmethod
    def _readable_rate(cls, value: str) -> str:
        value = value.strip()
        if value:
            from limits import parse_many

            parse_many(value)  # raises ValueError, naming the text, if it cannot be read
        return value

    def limits(self) -> ScenarioLimits:
        """The scenario size limits of these settings."""
        return ScenarioLimits(
            max_nodes=self.max_nodes,
            max_edges=self.max_edges,
            max_endpoints=self.max_endpoints,
            max_steps=self.max_steps,
            max_events=self.max_events,
            max_horizon_s=self.max_horizon_s,
            max_expected_requests=self.max_expected_requests,
            max_samples=self.max_samples,
            max_scheduled_events=self.max_scheduled_events,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings()
