"""The horizontal autoscaler's decision: Kubernetes' HorizontalPodAutoscaler algorithm.

Source: kubernetes.io, "Horizontal Pod Autoscaling", section "Algorithm details" and
"Configurable scaling behavior", as implemented by the controller
(`pkg/controller/podautoscaler`: `replica_calculator.go` and `horizontal.go`). Each sync:

1. **Recommendation** (`recommend`). The metric of the ready replicas is averaged and
   divided by the target: `ratio = mean / target`. Not-yet-ready replicas are set aside.
   Without them, or when `ratio <= 1`: no change if `|1 - ratio| <= tolerance`, else
   `ceil(ratio * ready)`. With them and `ratio > 1` (a scale-up), they count as using 0
   and the ratio is recomputed over all (`ratio'`); no change if `|1 - ratio'| <=
   tolerance` or if it no longer says scale up, else `ceil(ratio' * (ready + unready))`,
   but never fewer than now.
2. **Stabilisation**. The recommendation is recorded with its time. The decision is the
   current count raised to the lowest recommendation of the scale-up window and lowered
   to the highest of the scale-down window (each window holding the recommendations made
   less than its length ago, this one included).
3. **Rate limits**. A scale-up is capped at `max_replicas` and at the policies' limit,
   a scale-down floored at `min_replicas` and at theirs. A policy looks back `period_s`
   from now at the replicas added and removed since (its period's start count is the
   current one less those added plus those removed) and allows, up: start + `value`
   (pods) or `ceil(start * (1 + value/100))` (percent); down: start - `value` or
   `floor(start * (1 - value/100))`. `select_policy: max` takes the policy allowing the
   largest change, `min` the smallest, `disabled` allows none.

Kubernetes rounds a CPU utilisation down to a whole per cent before dividing; here it is a
real number, as every other metric is. A percent limit is computed in whole numbers, so
that 10% of 10 replicas allows 11 (Kubernetes' floating point makes that 12).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from asyncflow_backend.config.constants import ScalingPolicyType, SelectPolicy
from asyncflow_backend.schemas.autoscaling import Autoscaler, ScalingRules

WHOLE_EPSILON = 1e-9
"""A replica count within this of a whole number is that number: busy times are float sums,
and a utilisation of 1.0000000000003 must not ask for one replica more."""
WINDOW_EPSILON_S = 1e-9
"""A record exactly a window's length old is out of it (Kubernetes keeps those strictly
after the cutoff); the margin keeps sums of float sync periods from deciding that."""


def recommend(
    current: int, ready: Sequence[float], unready: int, target: float, tolerance: float
) -> int | None:
    """The replicas the metric asks for: step 1 above.

    `current` replicas in service (ready or starting), `ready` the metric of each ready
    replica, `unready` how many are starting. None when no replica is ready: Kubernetes
    then has no metric and does not scale.
    """
    if not ready:
        return None
    ratio = sum(ready) / len(ready) / target
    if unready == 0 or ratio <= 1.0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return _ceil(ratio * len(ready))
    counted = len(ready) + unready
    rebalanced = sum(ready) / counted / target
    if abs(1.0 - rebalanced) <= tolerance or rebalanced < 1.0:
        return current
    return max(current, _ceil(rebalanced * counted))


def _ceil(replicas: float) -> int:
    return math.ceil(replicas - WHOLE_EPSILON)


@dataclass(frozen=True)
class _Rules:
    window_s: float
    select: SelectPolicy
    policies: tuple[tuple[ScalingPolicyType, int, float], ...]

    @classmethod
    def of(cls, rules: ScalingRules) -> "_Rules":
        assert rules.stabilisation_window_s is not None
        assert rules.policies is not None
        return cls(
            float(rules.stabilisation_window_s),
            rules.select_policy,
            tuple((p.type, p.value, float(p.period_s)) for p in rules.policies),
        )


@dataclass
class HorizontalScaling:
    """The decisions of one autoscaler over a run: its recommendations and the changes it
    made, kept as long as a window or a policy period can look back at them."""

    spec: Autoscaler
    _up: _Rules = field(init=False)
    _down: _Rules = field(init=False)
    _recommendations: list[tuple[float, int]] = field(default_factory=list)
    _added: list[tuple[float, int]] = field(default_factory=list)
    _removed: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._up = _Rules.of(self.spec.behavior.up)
        self._down = _Rules.of(self.spec.behavior.down)

    def decide(self, now: float, current: int, recommendation: int) -> int:
        """The replicas to have from `now`, given the `recommendation` of this sync
        (steps 2 and 3), recording both the recommendation and the change."""
        spec = self.spec
        stabilised = self._stabilise(now, current, recommendation)
        desired = stabilised
        if stabilised > current:
            limit = max(current, self._limit(now, current, self._up, up=True))
            desired = min(stabilised, spec.max_replicas, limit)
        elif stabilised < current:
            limit = min(current, self._limit(now, current, self._down, up=False))
            desired = max(stabilised, spec.min_replicas, limit)
        if desired > current:
            self._added.append((now, desired - current))
        elif desired < current:
            self._removed.append((now, current - desired))
        return desired

    def _stabilise(self, now: float, current: int, recommendation: int) -> int:
        up_cutoff = now - self._up.window_s + WINDOW_EPSILON_S
        down_cutoff = now - self._down.window_s + WINDOW_EPSILON_S
        lowest = highest = recommendation
        for at, value in self._recommendations:
            if at > up_cutoff:
                lowest = min(lowest, value)
            if at > down_cutoff:
                highest = max(highest, value)
        oldest = min(up_cutoff, down_cutoff)
        self._recommendations = [r for r in self._recommendations if r[0] > oldest]
        self._recommendations.append((now, recommendation))
        return min(max(current, lowest), highest)

    def _limit(self, now: float, current: int, rules: _Rules, *, up: bool) -> int:
        """The most (`up`) or fewest replicas the policies of a direction allow now."""
        if rules.select is SelectPolicy.DISABLED:
            return current
        limits = []
        for kind, value, period in rules.policies:
            cutoff = now - period + WINDOW_EPSILON_S
            added = sum(n for at, n in self._added if at > cutoff)
            removed = sum(n for at, n in self._removed if at > cutoff)
            start = current - added + removed
            if kind is ScalingPolicyType.PODS:
                limits.append(start + value if up else start - value)
            elif up:
                limits.append(-(-start * (100 + value) // 100))
            else:
                limits.append(start * (100 - value) // 100)
        self._forget(now)
        pick = max if (rules.select is SelectPolicy.MAX) == up else min
        return pick(limits)

    def _forget(self, now: float) -> None:
        longest = max(
            (period for rules in (self._up, self._down) for _, _, period in rules.policies),
            default=0.0,
        )
        cutoff = now - longest + WINDOW_EPSILON_S
        self._added = [e for e in self._added if e[0] > cutoff]
        self._removed = [e for e in self._removed if e[0] > cutoff]
