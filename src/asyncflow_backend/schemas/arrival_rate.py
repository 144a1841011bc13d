"""Arrival-rate schedules of an open workload: steps, ramps, a daily sine, a trace.

Each schedule is a rate function λ(t) in requests per second and knows the
three things the rest of the engine asks of it: its value at t, its integral
over an interval (the expected number of arrivals there), and a cover of the
horizon by pieces each with a bound λ(t) <= M, which the generator thins
(`runtime.actors.arrivals`). Times are in seconds from the start of the run.

Errors: the models raise pydantic's `ValidationError` (through `ValueError`s
naming the point) for unsorted times, a first point not at 0, a rate that is
zero everywhere, or a trough above the peak.
"""

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from asyncflow_backend.config.constants import (
    MAX_ARRIVAL_RATE_PER_S,
    MAX_SCHEDULE_POINTS,
    MAX_SIMULATION_TIME_S,
)
from asyncflow_backend.schemas.base import Number, PositiveFinite, StrictModel, readable

LINEAR_SUBPIECES = 8
"""Pieces each linear segment is cut into for thinning: the bound then exceeds the rate
by at most 1/8 of the segment's rise, so few candidates are rejected."""
DAILY_PIECES_PER_PERIOD = 48
"""Pieces per period of the sine for thinning (half an hour of a day)."""

Seconds = Annotated[Number, Field(ge=0, le=MAX_SIMULATION_TIME_S, allow_inf_nan=False)]
Rate = Annotated[Number, Field(ge=0, le=MAX_ARRIVAL_RATE_PER_S, allow_inf_nan=False)]

Piece = tuple[float, float, float, bool]
"""(start_s, end_s, bound, flat): on [start, end) the rate is at most `bound` requests/s,
and exactly `bound` throughout when `flat`."""


class RatePoint(StrictModel):
    """The rate at one time of a schedule."""

    at_s: Seconds = Field(description="Seconds from the start of the run.")
    rate_per_s: Rate = Field(description="Arrival rate from this time on, in requests/s.")


def check_points(times: list[float], what: str) -> None:
    """Times start at 0 and strictly increase; raises ValueError naming the first bad point."""
    if times[0] != 0:
        raise ValueError(f"the first point must be at 0 s, got {readable(times[0])} s")
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            raise ValueError(
                f"{what} times must increase: point {i} is at {readable(times[i])} s, "
                f"not after point {i - 1} at {readable(times[i - 1])} s"
            )


class PiecewiseRate(StrictModel, ABC):
    """A rate given at points in time, held (`steps`) or joined by straight lines (`linear`)
    between them, and held at its last value after the last point."""

    points: list[RatePoint] = Field(min_length=1, max_length=MAX_SCHEDULE_POINTS)

    @property
    @abstractmethod
    def linear(self) -> bool:
        """True when the rate moves in straight lines between the points."""

    @field_validator("points")
    @classmethod
    def _points_in_order(cls, points: list[RatePoint]) -> list[RatePoint]:
        if points:
            check_points([p.at_s for p in points], "the points'")
            if not any(p.rate_per_s > 0 for p in points):
                raise ValueError("the rate is 0 at every point: no request would ever be sent")
        return points

    def rate_at(self, t: float) -> float:
        """λ(t), requests per second."""
        return self.rate_function()(t)

    def rate_function(self) -> Callable[[float], float]:
        """λ as a function of t, its points read once: O(log points) per call."""
        times = [p.at_s for p in self.points]
        rates = [p.rate_per_s for p in self.points]
        last = len(times) - 1
        linear = self.linear

        def rate(t: float) -> float:
            i = bisect.bisect_right(times, t) - 1
            if not linear or i >= last:
                return rates[i]
            t0, t1 = times[i], times[i + 1]
            return rates[i] + (rates[i + 1] - rates[i]) * (t - t0) / (t1 - t0)

        return rate

    def _segments(self, horizon_s: float) -> list[tuple[float, float, float, float]]:
        """(start, end, rate at start, rate at end) of each segment within [0, horizon]."""
        segments = []
        points = self.points
        for i, point in enumerate(points):
            start = point.at_s
            if start >= horizon_s:
                break
            if i + 1 < len(points):
                nxt = points[i + 1]
                end_rate = nxt.rate_per_s if self.linear else point.rate_per_s
                end = min(nxt.at_s, horizon_s)
                if end < nxt.at_s and self.linear:
                    end_rate = self.rate_at(end)
            else:
                end, end_rate = horizon_s, point.rate_per_s
            segments.append((start, end, point.rate_per_s, end_rate))
        return segments

    def integral(self, horizon_s: float) -> float:
        """∫₀^horizon λ(t) dt: the expected number of arrivals over the horizon."""
        return sum((b - a) * (ra + rb) / 2 for a, b, ra, rb in self._segments(horizon_s))

    def peak(self, horizon_s: float) -> float:
        """max λ(t) over [0, horizon]."""
        return max(max(ra, rb) for _, _, ra, rb in self._segments(horizon_s))

    def pieces(self, horizon_s: float) -> list[Piece]:
        """A cover of [0, horizon) by pieces with a bound on the rate in each."""
        pieces: list[Piece] = []
        for a, b, ra, rb in self._segments(horizon_s):
            if ra == rb:
                pieces.append((a, b, ra, True))
                continue
            cuts = [a + (b - a) * k / LINEAR_SUBPIECES for k in range(LINEAR_SUBPIECES)] + [b]
            for k in range(LINEAR_SUBPIECES):
                lo, hi = cuts[k], cuts[k + 1]
                rate_lo = ra + (rb - ra) * (lo - a) / (b - a)
                rate_hi = ra + (rb - ra) * (hi - a) / (b - a)
                pieces.append((lo, hi, max(rate_lo, rate_hi), False))
        return pieces

    def last_point_s(self) -> float:
        """When the schedule's last point is."""
        return self.points[-1].at_s


class StepRate(PiecewiseRate):
    """Piecewise constant: each point's rate holds until the next point."""

    shape: Literal["steps"]

    @property
    def linear(self) -> bool:
        """Steps hold their rate."""
        return False


class RampRate(PiecewiseRate):
    """Linear ramps between the points."""

    shape: Literal["ramp"]

    @property
    def linear(self) -> bool:
        """Ramps are straight lines."""
        return True


class TraceRate(PiecewiseRate):
    """A recorded rate over time: inline `points` (API, Python) or a CSV `file` beside
    the scenario (command line; the loader reads it into `points`)."""

    shape: Literal["trace"]
    points: list[RatePoint] = Field(default_factory=list, max_length=MAX_SCHEDULE_POINTS)
    file: str | None = Field(
        default=None,
        description="CSV of `at_s,rate_per_s` rows, relative to the scenario file. Read by "
        "the command line when it loads the scenario; an API request sends `points`.",
    )
    interpolation: Literal["steps", "linear"] = "linear"

    @model_validator(mode="after")
    def _points_or_file(self) -> Self:
        if self.file is not None:
            raise ValueError(
                f"the trace file '{self.file}' was not read: a trace file is read when a "
                "scenario file is loaded from disk (command line), relative to it; "
                "elsewhere (the API) send the trace inline as `points`"
            )
        if not self.points:
            raise ValueError("a trace needs `points` (or, in a scenario file, a `file`)")
        return self

    @property
    def linear(self) -> bool:
        """As `interpolation` says."""
        return self.interpolation == "linear"


class DailyRate(StrictModel):
    """A sine of period `period_s` between `trough_rate_per_s` and `peak_rate_per_s`:

    λ(t) = trough + (peak - trough) (1 + cos(2π (t - peak_at_s) / period)) / 2.
    """

    shape: Literal["daily"]
    period_s: Annotated[PositiveFinite, Field(le=MAX_SIMULATION_TIME_S)] = 86_400
    peak_rate_per_s: Rate
    trough_rate_per_s: Rate = 0.0
    peak_at_s: Seconds | None = Field(
        default=None, description="When the rate peaks; unset, at half the period."
    )

    @model_validator(mode="after")
    def _peak_above_trough(self) -> Self:
        if self.trough_rate_per_s > self.peak_rate_per_s:
            raise ValueError(
                f"trough_rate_per_s ({readable(self.trough_rate_per_s)}) must not exceed "
                f"peak_rate_per_s ({readable(self.peak_rate_per_s)})"
            )
        if self.peak_rate_per_s <= 0:
            raise ValueError("peak_rate_per_s must be greater than 0")
        return self

    @property
    def _peak_at(self) -> float:
        return self.peak_at_s if self.peak_at_s is not None else self.period_s / 2

    def rate_at(self, t: float) -> float:
        """λ(t), requests per second."""
        half = (self.peak_rate_per_s - self.trough_rate_per_s) / 2
        phase = 2 * math.pi * (t - self._peak_at) / self.period_s
        return self.trough_rate_per_s + half * (1 + math.cos(phase))

    def rate_function(self) -> Callable[[float], float]:
        """λ as a function of t."""
        return self.rate_at

    def integral(self, horizon_s: float) -> float:
        """∫₀^horizon λ(t) dt, in closed form."""
        half = (self.peak_rate_per_s - self.trough_rate_per_s) / 2
        omega = 2 * math.pi / self.period_s
        sines = math.sin(omega * (horizon_s - self._peak_at)) - math.sin(-omega * self._peak_at)
        return (self.trough_rate_per_s + half) * horizon_s + half * sines / omega

    def peak(self, horizon_s: float) -> float:
        """max λ(t) over [0, horizon]."""
        return self._max_between(0.0, horizon_s)

    def _max_between(self, a: float, b: float) -> float:
        # The cosine peaks at peak_at + k·period: inside [a, b] or not, else at an end.
        k = math.ceil((a - self._peak_at) / self.period_s)
        if self._peak_at + k * self.period_s <= b:
            return self.peak_rate_per_s
        return max(self.rate_at(a), self.rate_at(b))

    def pieces(self, horizon_s: float) -> list[Piece]:
        """`DAILY_PIECES_PER_PERIOD` pieces per period, each bounded by its own maximum."""
        width = self.period_s / DAILY_PIECES_PER_PERIOD
        count = math.ceil(horizon_s / width)
        pieces = []
        for k in range(count):
            a, b = k * width, min((k + 1) * width, horizon_s)
            flat = self.peak_rate_per_s == self.trough_rate_per_s
            pieces.append((a, b, self._max_between(a, b), flat))
        return pieces


_SHAPES = {"steps": "StepRate", "ramp": "RampRate", "trace": "TraceRate", "daily": "DailyRate"}


def _shape(value: Any) -> str | None:
    # Tags named after the classes: error paths then drop them, as for any union member.
    shape = value.get("shape") if isinstance(value, dict) else getattr(value, "shape", None)
    return _SHAPES.get(shape) if isinstance(shape, str) else None


ArrivalRate = Annotated[
    Annotated[StepRate, Tag("StepRate")]
    | Annotated[RampRate, Tag("RampRate")]
    | Annotated[TraceRate, Tag("TraceRate")]
    | Annotated[DailyRate, Tag("DailyRate")],
    Discriminator(
        _shape,
        custom_error_type="invalid_shape",
        custom_error_message="`shape` must be one of steps, ramp, trace or daily",
    ),
]
"""An arrival-rate schedule, told apart by its `shape`."""
