"""How long to simulate, what to record, and how to judge recovery."""

from typing import Annotated

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
from asyncflow_backend.schemas.base import Number, PositiveFinite, PositiveInteger, StrictModel

DEFAULT_RECOVERY_WINDOW_S = 10
DEFAULT_RECOVERY_TOLERANCE = 0.1
DEFAULT_RECOVERY_BASELINE_S = 60.0


class RecoverySettings(StrictModel):
    """How a run judges whether it recovered after each transient trigger (an injected
    event's window, a dip in a capacity schedule, a spike in an arrival-rate schedule):
    the rule is in `metrics.recovery` and docs/overload.md."""

    window_s: PositiveInteger = Field(
        default=DEFAULT_RECOVERY_WINDOW_S,
        description="Whole seconds of the sliding window whose goodput and queue are "
        "compared with the baseline's.",
    )
    tolerance: Annotated[Number, Field(gt=0, lt=1)] = Field(
        default=DEFAULT_RECOVERY_TOLERANCE,
        description="Relative tolerance: goodput at least (1 - tolerance) x the baseline's, "
        "queue at most (1 + tolerance) x the baseline's highest window + 1 request.",
    )
    baseline_s: PositiveFinite = Field(
        default=DEFAULT_RECOVERY_BASELINE_S,
        le=MAX_SIMULATION_TIME_S,
        description="Seconds before the trigger starts over which the baseline is measured.",
    )


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
    recovery: RecoverySettings | None = Field(
        default=None,
        description="How recovery after a transient trigger is judged; unset, the defaults "
        f"(window_s {DEFAULT_RECOVERY_WINDOW_S}, tolerance {DEFAULT_RECOVERY_TOLERANCE}, "
        f"baseline_s {DEFAULT_RECOVERY_BASELINE_S:g}).",
    )
