"""Metrics over a window of simulated time: `latency.p95@[3600,7200]`, `throughput.goodput_rps
@peak`, `requests.not_completed_share@peak:600`.

A windowed metric is a base metric (one of `WINDOWED_BASES`) followed by `@` and a window:

- `[start,end]`: from `start` to `end` seconds of simulated time, 0 <= start < end <=
  the horizon;
- `peak` or `peak:<seconds>`: the window of that length (3600 s, the peak hour, unless
  told) in which the scheduled arrival rates of the open workloads, summed, bring the most
  requests: the peak hour of a daily curve, the busiest stretch of a trace. Found to the
  second on a grid of at most `PEAK_GRID_POINTS` starts and at the schedules' points; the
  earliest of equal windows.

Requests are selected by when they ended: a completion at its completion, any other end
(a timeout at its timeout) when it ended. So over [a, b):

- `latency.*`: the latencies of the requests completed in it;
- `throughput.mean_rps`, `throughput.goodput_rps`: those completions over b - a;
- `time_to_outcome.*`: the time to outcome of every request that ended in it;
- `requests.not_completed_share`: of the requests that ended in it, the share that did not
  complete (requests still in flight at b are not counted; the whole-run metric counts
  those in flight at the horizon).

The window is used as given: the experiment's warm-up does not cut it.
"""

import math
import re
from dataclasses import dataclass

import numpy as np

from asyncflow_backend.schemas.arrival_rate import DailyRate, PiecewiseRate
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.scenario import Scenario

PEAK_LENGTH_S = 3600.0
PEAK_GRID_POINTS = 20_000
WINDOWED_BASES = (
    "latency.mean",
    "latency.p50",
    "latency.p95",
    "latency.p99",
    "time_to_outcome.mean",
    "time_to_outcome.p50",
    "time_to_outcome.p95",
    "time_to_outcome.p99",
    "throughput.mean_rps",
    "throughput.goodput_rps",
    "requests.not_completed_share",
)
_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_RANGE = re.compile(rf"\[{_NUMBER},{_NUMBER}\]")
_PEAK = re.compile(rf"peak(?::{_NUMBER})?")


class WindowError(ValueError):
    """A windowed metric name that cannot be read or whose window does not fit the run."""


@dataclass(frozen=True)
class WindowedMetric:
    """`base` over `window`, as written (`[a,b]`, `peak` or `peak:L`)."""

    name: str
    base: str
    window: str

    def bounds(self, scenario: Scenario) -> tuple[float, float]:
        """[start, end) in seconds for `scenario`; raises `WindowError` saying why not."""
        horizon = scenario.sim_settings.total_simulation_time
        given = _RANGE.fullmatch(self.window)
        if given is not None:
            start, end = float(given[1]), float(given[2])
            if start < 0:
                raise WindowError(f"window start {readable(start)} is before 0")
            if end <= start:
                raise WindowError(
                    f"window end {readable(end)} is not after its start {readable(start)}"
                )
            if end > horizon:
                raise WindowError(
                    f"window end {readable(end)} is past the horizon {readable(horizon)}"
                )
            return start, end
        peak = _PEAK.fullmatch(self.window)
        assert peak is not None  # `parse_windowed` let nothing else through
        length = float(peak[1]) if peak[1] is not None else PEAK_LENGTH_S
        if length <= 0:
            raise WindowError(f"the peak window's length {readable(length)} is not above 0")
        if length > horizon:
            raise WindowError(
                f"the peak window of {readable(length)} s is longer than the horizon "
                f"{readable(horizon)}; give a shorter one as @peak:<seconds>"
            )
        return peak_window(scenario, length)


def is_windowed(name: str) -> bool:
    """True if `name` asks for a window (has an `@`)."""
    return "@" in name


def parse_windowed(name: str) -> WindowedMetric:
    """The windowed metric `name`; raises `WindowError` naming what is wrong with it."""
    base, _, window = name.partition("@")
    if base not in WINDOWED_BASES:
        raise WindowError(
            f"'{base}' has no windowed form; one of {', '.join(WINDOWED_BASES)} can take "
            "@[start,end] or @peak"
        )
    window = window.strip()
    if _RANGE.fullmatch(window) is None and _PEAK.fullmatch(window) is None:
        raise WindowError(
            f"window '{window}' is neither [start,end] in seconds nor peak or peak:<seconds>"
        )
    return WindowedMetric(name, base, window)


def peak_window(scenario: Scenario, length_s: float) -> tuple[float, float]:
    """The window of `length_s` seconds in [0, horizon] with the most scheduled arrivals
    (module docstring); raises `WindowError` when no open workload has a schedule."""
    schedules = [w.arrival_rate for w in scenario.generators if w.arrival_rate is not None]
    if not schedules:
        raise WindowError(
            "@peak needs an arrival-rate schedule (rqs_input.arrival_rate) to find the "
            "busiest window in; give the window as @[start,end]"
        )
    horizon = scenario.sim_settings.total_simulation_time
    latest = horizon - length_s
    step = max(1.0, latest / PEAK_GRID_POINTS)
    starts = [np.arange(0.0, latest, step), np.array([latest])]
    for schedule in schedules:
        if isinstance(schedule, PiecewiseRate):
            times = np.array([p.at_s for p in schedule.points])
            starts += [times, times - length_s]
        elif isinstance(schedule, DailyRate):
            peaks = schedule.peak_at_s if schedule.peak_at_s is not None else schedule.period_s / 2
            count = math.ceil(horizon / schedule.period_s) + 1
            starts.append(peaks + schedule.period_s * np.arange(-1, count) - length_s / 2)
    candidates = np.unique(np.clip(np.concatenate(starts), 0.0, latest))
    arrivals = sum(
        (_cumulative(s, candidates + length_s) - _cumulative(s, candidates) for s in schedules),
        start=np.zeros(candidates.size),
    )
    best = int(np.flatnonzero(arrivals >= arrivals.max() * (1 - 1e-12))[0])
    return float(candidates[best]), float(candidates[best] + length_s)


def _cumulative(schedule: PiecewiseRate | DailyRate, times: np.ndarray) -> np.ndarray:
    """∫₀^t λ for each t of `times`, vectorised."""
    if isinstance(schedule, DailyRate):
        return np.array([schedule.integral(float(t)) for t in times])
    at = np.array([p.at_s for p in schedule.points])
    rate = np.array([p.rate_per_s for p in schedule.points])
    ends = np.append(at[1:], np.inf)
    # The rate at the end of each piece: the next point's for a ramp, held for steps.
    end_rate = np.append(rate[1:], rate[-1]) if schedule.linear else rate
    widths = np.diff(at)
    whole = np.concatenate(([0.0], np.cumsum(widths * (rate[:-1] + end_rate[:-1]) / 2)))
    i = np.clip(np.searchsorted(at, times, side="right") - 1, 0, at.size - 1)
    into = times - at[i]
    span = ends[i] - at[i]
    slope = np.where(np.isfinite(span), (end_rate[i] - rate[i]) / np.where(span > 0, span, 1), 0)
    cumulative: np.ndarray = whole[i] + into * (rate[i] + slope * into / 2)
    return cumulative


def measure_window(
    base: str,
    start_s: float,
    end_s: float,
    completion_times: np.ndarray,
    latencies: np.ndarray,
    end_times: np.ndarray,
    end_latencies: np.ndarray,
) -> float | None:
    """`base` over [start_s, end_s) from the run's completions (their times and latencies,
    in completion order) and other ends (their times and times to outcome); None when
    nothing was measured there."""
    low, high = np.searchsorted(completion_times, [start_s, end_s], side="left")
    completed = latencies[low:high]
    if base.startswith("throughput."):
        return completed.size / (end_s - start_s)
    ended = end_latencies[(end_times >= start_s) & (end_times < end_s)]
    if base == "requests.not_completed_share":
        total = completed.size + ended.size
        return ended.size / total if total else None
    family, stat = base.split(".")
    values = completed if family == "latency" else np.concatenate((completed, ended))
    if not values.size:
        return None
    if stat == "mean":
        return float(values.mean())
    return float(np.percentile(values, float(stat[1:])))
