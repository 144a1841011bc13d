"""The experiment's results document: every point tried, its replications and summaries."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from asyncflow_backend.experiments.measure import Replication
from asyncflow_backend.experiments.spec import Objective
from asyncflow_backend.statistics import Summary

Verdict = Literal["pass", "fail", "inconclusive"]
SearchStatus = Literal["found", "below_min_factor", "above_max_factor", "max_points", "invalid"]


class MetricSummary(BaseModel):
    """Mean, standard error and t interval of one metric over a point's replications."""

    n: int = Field(description="Replications that measured it.")
    mean: float | None
    standard_error: float | None
    low: float | None = Field(description="Lower end of the two-sided interval.")
    high: float | None = Field(description="Upper end of the two-sided interval.")

    @classmethod
    def of(cls, summary: Summary) -> "MetricSummary":
        """From a `statistics.Summary`."""
        return cls(
            n=summary.n,
            mean=summary.mean,
            standard_error=summary.standard_error,
            low=summary.low,
            high=summary.high,
        )


class PointReport(BaseModel):
    """One point: the scenario with `values` set (nothing set for plain replications)."""

    key: str = Field(description="Identifies the point within the experiment.")
    values: dict[str, Any] = Field(description="Scenario path to the value set at this point.")
    factor: float | None = Field(default=None, description="Load factor (searches).")
    replications: list[Replication]
    summary: dict[str, MetricSummary]
    planned: int = Field(description="Replications this point needs so far.")
    precise: bool | None = Field(
        default=None, description="until_precise: whether the target was met."
    )
    verdict: Verdict | None = Field(default=None, description="Searches: the objective's verdict.")
    error: str | None = Field(default=None, description="Why the point could not run.")


class SearchReport(BaseModel):
    """The capacity: the largest passing factor, and the interval the true one lies in."""

    load: str
    path: str = Field(description="The scenario field the factor multiplies (the first).")
    fields: list[str] = Field(
        default_factory=list,
        description="Every field the factor multiplies: one per workload class.",
    )
    base_value: float | None = Field(
        description="`path`'s value at factor 1; None when it is a schedule, not a number."
    )
    objective: Objective
    confidence: float
    status: SearchStatus
    capacity: float | None = Field(description="Largest factor that passed.")
    low: float | None = Field(description="Capacity interval: the largest passing factor.")
    high: float | None = Field(description="Capacity interval: the smallest failing factor.")
    capacity_value: float | None = Field(
        description="`path`'s value at `capacity` (users rounded to whole users); None when "
        "it is a schedule."
    )
    message: str


class ExperimentReport(BaseModel):
    """What an experiment found so far (`complete` once nothing is pending)."""

    kind: Literal["replications", "sweep", "search"]
    seed: int
    confidence: float
    warmup: float | str
    metrics: list[str] = Field(description="Every metric name, in display order.")
    points: list[PointReport]
    search: SearchReport | None = None
    complete: bool
    replications_done: int
    replications_planned: int
