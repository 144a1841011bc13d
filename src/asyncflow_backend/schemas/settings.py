"""How long to simulate and what to record."""

from pydantic import Field

from asyncflow_backend.config.constants import (
    DEFAULT_SAMPLE_PERIOD_S,
    DEFAULT_SIMULATION_TIME_S,
    MAX_SAMPLE_PERIOD_S,
    MAX_SIMULATION_TIME_S,
    MIN_SAMPLE_PERIOD_S,
    MIN_SIMULATION_TIME_S,
    EventMetric,
    SampledMetric,
)
from asyncflow_backend.schemas.base import Number, StrictModel


class SimulationSettings(StrictModel):
    """The horizon, the sampling period and which metrics to collect."""

    total_simulation_time: Number = Field(
        default=DEFAULT_SIMULATION_TIME_S,
        ge=MIN_SIMULATION_TIME_S,
        le=MAX_SIMULATION_TIME_S,
        allow_inf_nan=False,
        description="Simulated seconds.",
    )
    sample_period_s: Number = Field(
        default=DEFAULT_SAMPLE_PERIOD_S, ge=MIN_SAMPLE_PERIOD_S, le=MAX_SAMPLE_PERIOD_S
    )
    enabled_sample_metrics: list[SampledMetric] = Field(default_factory=lambda: list(SampledMetric))
    enabled_event_metrics: list[EventMetric] = Field(
        default_factory=lambda: [EventMetric.RQS_CLOCK]
    )
