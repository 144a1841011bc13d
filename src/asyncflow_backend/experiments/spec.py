"""The experiment document: a scenario and what to do with it (replications, a sweep, a search).

```yaml
scenario: mm1.yml            # a path (relative to this file) or the scenario itself
seed: 7                      # root seed; replication i uses child i of SeedSequence(seed)
replications: 10             # R, per point
confidence: 0.95             # of every interval and of the search's verdicts
warmup_s: 30                 # seconds of simulated time left out, or "mser5"
until_precise:               # optional: add replications until precise enough
  metric: latency.p95
  relative_half_width: 0.05
  max_replications: 60
sweep:                       # optional: a grid of points (the cartesian product)
  - path: rqs_input.avg_active_users.mean
    values: [50, 100, 150]
  - path: topology_graph.nodes.servers.srv-1.server_resources.cpu_cores
    range: { start: 1, stop: 4, step: 1 }
search:                      # optional, not with sweep: the largest load keeping an objective
  load: arrival_rate          # or users
  objective: { metric: latency.p95, at_most: 0.2 }
metrics:                     # optional: windowed metrics to report too
  - latency.p95@[3600,7200]
  - throughput.goodput_rps@peak
```

Every metric name is one of `asyncflow_backend.experiments.measure.metric_names`, or a
windowed metric (`asyncflow_backend.experiments.windows`), which is measured only when the
experiment names it here, in `until_precise` or in the search's objective.
"""

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from asyncflow_backend.schemas.base import Integer, Number, PositiveFinite, StrictModel

DEFAULT_REPLICATIONS = 10
DEFAULT_CONFIDENCE = 0.95
MAX_RANGE_POINTS = 1000
MAX_EXTRA_METRICS = 50

FACTOR_DIGITS = 12
"""A search rounds every factor it tries to this many decimal places, so that points have keys."""
MIN_FACTOR = 10.0 ** -(FACTOR_DIGITS - 3)
"""The smallest `min_factor`: factors down to it keep at least 4 significant digits."""

Confidence = Annotated[Number, Field(gt=0.5, lt=1.0)]
Replications = Annotated[Integer, Field(ge=2, le=100_000)]


class UntilPrecise(StrictModel):
    """Add replications until the interval of `metric` is narrow enough, or the cap is reached."""

    metric: str = Field(min_length=1, description="A metric name, e.g. latency.p95.")
    relative_half_width: Annotated[Number, Field(gt=0, lt=1)] = Field(
        description="Target of the interval's half-width over |mean|, e.g. 0.05."
    )
    max_replications: Replications = Field(description="Cap on replications per point.")


class ValueRange(StrictModel):
    """start, start + step, ... up to and including stop (within a rounding error)."""

    start: Annotated[Number, Field(allow_inf_nan=False)]
    stop: Annotated[Number, Field(allow_inf_nan=False)]
    step: PositiveFinite

    def values(self) -> list[float]:
        """The points of the range; raises `ValueError` if there are more than MAX_RANGE_POINTS."""
        if self.stop < self.start:
            raise ValueError("stop must not be below start")
        steps = (self.stop - self.start) / self.step
        if not steps < MAX_RANGE_POINTS:  # also catches an overflow to infinity
            raise ValueError(f"the range has more than {MAX_RANGE_POINTS} points")
        count = int(steps + 1e-9) + 1
        if count > MAX_RANGE_POINTS:
            raise ValueError(f"the range has {count} points, more than {MAX_RANGE_POINTS}")
        return [self.start + k * self.step for k in range(count)]


class SweepParameter(StrictModel):
    """One scenario field, addressed by path, and the values it takes (`values` or `range`)."""

    path: str = Field(
        min_length=1,
        description="Dotted path into the scenario; a list element by index or by its id.",
    )
    values: list[Any] | None = Field(default=None, min_length=1)
    range: ValueRange | None = None

    @model_validator(mode="after")
    def _values_or_range(self) -> Self:
        if (self.values is None) == (self.range is None):
            raise ValueError("give exactly one of values and range")
        if self.range is not None:
            self.range.values()  # raises if too long
        return self

    def points(self) -> list[Any]:
        """The values this parameter takes, in order."""
        if self.values is not None:
            return list(self.values)
        assert self.range is not None
        return [_tidy(v) for v in self.range.values()]


def _tidy(value: float) -> float | int:
    # 0.1 + 2 * 0.1 is 0.30000000000000004: keep what a user would have written.
    rounded = round(value, 12)
    return int(rounded) if rounded.is_integer() else rounded


class Objective(StrictModel):
    """A metric that must stay at or under a bound (latency, utilisation, loss fraction)."""

    metric: str = Field(min_length=1, description="A metric name, e.g. latency.p95.")
    at_most: Number = Field(allow_inf_nan=False, description="Bound, in the metric's unit.")


class Search(StrictModel):
    """The largest factor on the load that keeps `objective`, by bracketing then bisection.

    A point passes when the one-sided upper confidence bound of the metric is
    at or under the bound, fails when the lower bound is above it, and is
    inconclusive otherwise (more replications are run, up to
    `max_replications`). The capacity lies between the largest passing and
    the smallest failing factor.
    """

    load: Literal["arrival_rate", "users"] = Field(
        default="arrival_rate",
        description="What the factor multiplies in every workload class: the arrival rate "
        "(requests per minute per user, or every rate of an arrival-rate schedule) or the "
        "users (mean active users, or a closed population, rounded to whole users).",
    )
    objective: Objective
    start: PositiveFinite = Field(default=1.0, description="First factor tried.")
    min_factor: PositiveFinite = Field(
        default=1 / 64,
        description=f"Smallest factor tried, at least {MIN_FACTOR:g}.",
        json_schema_extra={"minimum": MIN_FACTOR},
    )
    max_factor: PositiveFinite = Field(default=64.0, description="Largest factor tried.")
    tolerance: Annotated[Number, Field(gt=0, lt=1)] = Field(
        default=0.02, description="Stop when (high - low) / low is at or under this."
    )
    max_points: Annotated[Integer, Field(ge=2, le=200)] = Field(
        default=30, description="Most factors tried."
    )
    max_replications: Replications | None = Field(
        default=None,
        description="Replications an inconclusive point may grow to; default 4 x replications.",
    )

    @field_validator("min_factor")
    @classmethod
    def _kept(cls, min_factor: float) -> float:
        # Below MIN_FACTOR the rounding to FACTOR_DIGITS places loses the factor: 1e-300 is 0.
        if min_factor < MIN_FACTOR:
            raise ValueError(
                f"must be at least {MIN_FACTOR:g}: the search keeps factors to "
                f"{FACTOR_DIGITS} decimal places, and a smaller factor would lose its digits"
            )
        return min_factor

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min_factor <= self.start <= self.max_factor:
            raise ValueError("start must lie between min_factor and max_factor")
        return self


class ExperimentSpec(StrictModel):
    """An experiment, with its scenario as data (see `load_experiment` for files)."""

    scenario: dict[str, Any] = Field(description="The scenario, as in a scenario file.")
    seed: Annotated[Integer, Field(ge=0, lt=2**63)] | None = Field(
        default=None, description="Root seed; unset: the scenario's seed, else a fresh one."
    )
    replications: Replications = DEFAULT_REPLICATIONS
    confidence: Confidence = DEFAULT_CONFIDENCE
    warmup_s: Annotated[Number, Field(ge=0, allow_inf_nan=False)] | Literal["mser5"] = Field(
        default=0.0,
        description="Simulated seconds left out at the start of each replication, or mser5.",
    )
    until_precise: UntilPrecise | None = None
    metrics: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        max_length=MAX_EXTRA_METRICS,
        description="Windowed metrics every replication reports beside the others, e.g. "
        "latency.p95@[3600,7200] or throughput.goodput_rps@peak.",
    )
    sweep: list[SweepParameter] | None = Field(default=None, min_length=1)
    search: Search | None = None

    @model_validator(mode="after")
    def _one_plan(self) -> Self:
        if self.sweep is not None and self.search is not None:
            raise ValueError("an experiment has a sweep or a search, not both")
        if self.until_precise is not None and self.until_precise.max_replications < (
            self.replications
        ):
            raise ValueError("until_precise.max_replications must be at least replications")
        if (
            self.search is not None
            and self.search.max_replications is not None
            and (self.search.max_replications < self.replications)
        ):
            raise ValueError("search.max_replications must be at least replications")
        return self

    def metric_fields(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every metric the experiment names, with where: `metrics`, `until_precise`, the
        search's objective."""
        fields: list[tuple[tuple[str | int, ...], str]] = [
            (("metrics", i), name) for i, name in enumerate(self.metrics)
        ]
        if self.until_precise is not None:
            fields.append((("until_precise", "metric"), self.until_precise.metric))
        if self.search is not None:
            fields.append((("search", "objective", "metric"), self.search.objective.metric))
        return fields

    def windowed(self) -> tuple[str, ...]:
        """The windowed metrics it names, each once, in order."""
        return tuple(dict.fromkeys(name for _, name in self.metric_fields() if "@" in name))

    @property
    def kind(self) -> Literal["replications", "sweep", "search"]:
        """What the experiment does."""
        if self.sweep is not None:
            return "sweep"
        if self.search is not None:
            return "search"
        return "replications"
