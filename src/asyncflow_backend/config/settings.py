"""All configuration, read once from `ASYNCFLOW_*` environment variables.

Every field is an environment variable named `ASYNCFLOW_` + the field name in
upper case, e.g. `database_url` is `ASYNCFLOW_DATABASE_URL`.
"""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncflow_backend.schemas.limits import ScenarioLimits

ENV_PREFIX = "ASYNCFLOW_"
_DEFAULT_LIMITS = ScenarioLimits()


class Settings(BaseSettings):
    """The service's configuration; defaults give an embedded setup that needs nothing installed."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Persistence and execution.
    database_url: str = Field(
        default="sqlite+aiosqlite:///./asyncflow.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///FILE or "
        "postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB.",
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
    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A running run whose worker has not reported for this long may be "
        "taken over by another worker.",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Executions a run may start before it is given up."
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
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings()
