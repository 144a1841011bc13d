"""A horizontal autoscaler on a replica group, after Kubernetes' HorizontalPodAutoscaler.

The fields follow `autoscaling/v2` (kubernetes.io, "Horizontal Pod Autoscaling" and the
`HorizontalPodAutoscaler` API reference) in this language's spelling: `min_replicas`,
`max_replicas`, a metric with a target, the controller's sync period and tolerance, and
`behavior` with its `scale_up` and `scale_down` rules. Left out, each takes Kubernetes'
default. How a run applies them is `runtime.policies.horizontal_scaling` and
`runtime.events.autoscaler`; docs/semantics.md says it in words.
"""

from pydantic import Field, ValidationInfo, field_validator

from asyncflow_backend.config.constants import (
    MAX_DURATION_S,
    MAX_POLICY_PERIOD_S,
    MAX_REPLICAS,
    MAX_SCALING_POLICIES,
    MAX_STABILISATION_WINDOW_S,
    ScalingMetric,
    ScalingPolicyType,
    SelectPolicy,
)
from asyncflow_backend.schemas.base import Integer, Number, PositiveFinite, StrictModel

DEFAULT_SYNC_PERIOD_S = 15.0
"""Kubernetes' `--horizontal-pod-autoscaler-sync-period`."""
DEFAULT_TOLERANCE = 0.1
"""Kubernetes' `--horizontal-pod-autoscaler-tolerance`."""
DEFAULT_SCALE_DOWN_WINDOW_S = 300
"""Kubernetes' `--horizontal-pod-autoscaler-downscale-stabilization` (5 minutes)."""


class ScalingPolicy(StrictModel):
    """One bound on the change of replicas over a sliding period (Kubernetes'
    `HPAScalingPolicy`)."""

    type: ScalingPolicyType = Field(
        description="`pods`: at most `value` replicas added (or removed) in `period_s`; "
        "`percent`: at most `value` per cent of the replicas at the period's start."
    )
    value: Integer = Field(gt=0, le=100_000, description="Replicas, or per cent.")
    period_s: Integer = Field(
        gt=0,
        le=MAX_POLICY_PERIOD_S,
        description="Seconds the change is counted over, looking back from each tick.",
    )


class ScalingRules(StrictModel):
    """The rules of one direction (Kubernetes' `HPAScalingRules`); a field left out takes
    the direction's default."""

    stabilisation_window_s: Integer | None = Field(
        default=None,
        ge=0,
        le=MAX_STABILISATION_WINDOW_S,
        description="Seconds of past recommendations considered: scaling up takes the "
        "lowest in the window, scaling down the highest. Default 0 up, 300 down.",
    )
    select_policy: SelectPolicy = Field(
        default=SelectPolicy.MAX,
        description="`max`: the policy that allows the largest change applies; `min`: the "
        "smallest; `disabled`: no scaling in this direction.",
    )
    policies: list[ScalingPolicy] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SCALING_POLICIES,
        description="Default up: 100 percent and 4 pods per 15 s (the larger); down: 100 "
        "percent per 15 s.",
    )


SCALE_UP_DEFAULTS = ScalingRules(
    stabilisation_window_s=0,
    policies=[
        ScalingPolicy(type=ScalingPolicyType.PERCENT, value=100, period_s=15),
        ScalingPolicy(type=ScalingPolicyType.PODS, value=4, period_s=15),
    ],
)
"""Kubernetes' default `scaleUp` behaviour."""
SCALE_DOWN_DEFAULTS = ScalingRules(
    stabilisation_window_s=DEFAULT_SCALE_DOWN_WINDOW_S,
    policies=[ScalingPolicy(type=ScalingPolicyType.PERCENT, value=100, period_s=15)],
)
"""Kubernetes' default `scaleDown` behaviour."""


class Behavior(StrictModel):
    """How fast the group may grow and shrink (Kubernetes' `HorizontalPodAutoscalerBehavior`)."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None

    @property
    def up(self) -> ScalingRules:
        """`scale_up` with Kubernetes' defaults filled in."""
        return _merged(self.scale_up, SCALE_UP_DEFAULTS)

    @property
    def down(self) -> ScalingRules:
        """`scale_down` with Kubernetes' defaults filled in."""
        return _merged(self.scale_down, SCALE_DOWN_DEFAULTS)


def _merged(rules: ScalingRules | None, defaults: ScalingRules) -> ScalingRules:
    if rules is None:
        return defaults
    return rules.model_copy(
        update={
            "stabilisation_window_s": defaults.stabilisation_window_s
            if rules.stabilisation_window_s is None
            else rules.stabilisation_window_s,
            "policies": defaults.policies if rules.policies is None else rules.policies,
        }
    )


class Autoscaler(StrictModel):
    """A horizontal autoscaler on the replica group of its server.

    Raises (through pydantic) a `ValueError` at `max_replicas` when it is below
    `min_replicas`, and at `target` when a `cpu_utilisation` target is above 1.
    """

    metric: ScalingMetric = Field(
        description="`cpu_utilisation`: busy core-seconds over core-seconds in the last "
        "sync period, averaged over the ready replicas; `in_flight_requests`: requests in "
        "a ready replica at the tick, averaged."
    )
    target: PositiveFinite = Field(
        description="The metric's desired value: a utilisation in (0, 1], or requests per replica."
    )
    min_replicas: Integer = Field(default=1, gt=0, le=MAX_REPLICAS)
    max_replicas: Integer = Field(
        gt=0, le=MAX_REPLICAS, description="The group has this many servers in the run."
    )
    sync_period_s: PositiveFinite = Field(
        default=DEFAULT_SYNC_PERIOD_S,
        ge=0.001,
        le=MAX_DURATION_S,
        description="Seconds between two decisions; the first is one period after the start.",
    )
    tolerance: Number = Field(
        default=DEFAULT_TOLERANCE,
        ge=0,
        lt=1,
        description="No change while the metric over its target is within this of 1.0.",
    )
    startup_delay_s: Number = Field(
        default=0.0,
        ge=0,
        le=MAX_DURATION_S,
        allow_inf_nan=False,
        description="Seconds from adding a replica to its first request: it is not ready "
        "(not in the balancers, not in the average) until then.",
    )
    behavior: Behavior = Field(default_factory=Behavior)

    @field_validator("target")
    @classmethod
    def _target_in_range(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("metric") is ScalingMetric.CPU_UTILISATION and value > 1:
            raise ValueError(
                f"a cpu_utilisation target is at most 1 (all cores busy), got {value:g}"
            )
        return value

    @field_validator("max_replicas")
    @classmethod
    def _at_least_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError(f"max_replicas ({value}) is below min_replicas ({low})")
        return value
