"""Stored runs as the API finds them by id and the documents it answers with."""

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from asyncflow_backend.api.errors import RunNotFound
from asyncflow_backend.api.models import RunLinks, RunView, SeriesView
from asyncflow_backend.db.models import Run, RunSeries
from asyncflow_backend.db.repository import RunRepository
from asyncflow_backend.metrics.downsampling import (
    bucket_means,
    bucket_stride,
    lttb,
    merge_latency_windows,
)
from asyncflow_backend.schemas.results import SimulationResults

API_PREFIX = "/api/v1"


def run_path(run_id: object) -> str:
    """Where a run's status lives; also the `Location` of a submitted run."""
    return f"{API_PREFIX}/simulations/{run_id}"


def run_key(run_id: str) -> str | None:
    """The stored form of a run id, 32 hex digits (the dashed UUID form is accepted
    too), or None if `run_id` is not an id at all."""
    try:
        return uuid.UUID(run_id).hex
    except ValueError:
        return None


async def find_run(repository: RunRepository, run_id: str, owner: str | None) -> Run:
    """The run, if it exists and the caller owns it; another key's run is "not found" too."""
    key = run_key(run_id)
    run = await repository.get(key, owner=owner) if key is not None else None
    if run is None:
        raise RunNotFound(run_id)
    return run


def run_view(run: Run) -> RunView:
    """The status document of a run."""
    path = run_path(run.id)
    return RunView(
        id=str(run.id),
        status=run.status,
        progress=min(1.0, max(0.0, run.progress)),
        simulated_s=max(0.0, run.simulated_s),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
        seed=run.seed,
        name=scenario_name(run),
        cancel_requested=run.cancel_requested,
        attempts=run.attempts,
        links=RunLinks(
            self_=path,
            results=f"{path}/results",
            timeseries=f"{path}/timeseries",
            cancel=f"{path}/cancel",
        ),
    )


def scenario_name(run: Run) -> str | None:
    """The `name` of the scenario the run was accepted with, if it has one."""
    name = run.scenario.get("name") if isinstance(run.scenario, dict) else None
    return name if isinstance(name, str) else None


def results_document(
    document: dict[str, Any], series: Sequence[RunSeries], max_points: int
) -> SimulationResults:
    """The stored results with every series averaged down to at most `max_points` buckets.

    One stride for all series keeps the single `sample_period_s` of the document
    true: value k is the mean over [k, k + 1) x the new period.
    """
    longest = max((len(s.values) for s in series), default=0)
    stride = bucket_stride(longest, max_points)
    stored = document.get("time_series") or {}
    period = stored.get("sample_period_s")
    if period is None:
        period = series[0].sample_period_s if series else 0.0
    nested: dict[str, dict[str, list[float]]] = {}
    for s in series:
        nested.setdefault(str(s.metric), {})[s.component] = bucket_means(s.values, stride).tolist()
    time_series = {"sample_period_s": period * stride, "series": nested}
    latency = dict(document.get("latency") or {})
    over_time = latency.get("over_time")
    if over_time and len(over_time["count"]) > max_points:
        window_stride = bucket_stride(len(over_time["count"]), max_points)
        percentiles = [over_time[p] for p in ("p50", "p95", "p99")]
        count, (p50, p95, p99) = merge_latency_windows(
            over_time["count"], percentiles, window_stride
        )
        latency["over_time"] = {
            "window_s": over_time["window_s"] * window_stride,
            "count": count,
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "merged": True,
        }
    return SimulationResults.model_validate(
        {**document, "latency": latency, "time_series": time_series}
    )


def series_window(
    series: RunSeries, start: float, end: float | None, max_points: int
) -> SeriesView:
    """The samples of `series` read in [start, end], reduced with LTTB to `max_points`."""
    values = np.asarray(series.values, dtype=np.float64)
    # Rounded to the nanosecond so that 0.1 x 3 reads 0.3, not 0.30000000000000004.
    times = np.round(np.arange(values.size, dtype=np.float64) * series.sample_period_s, 9)
    inside = times >= start
    if end is not None:
        inside &= times <= end
    t, y = lttb(times[inside], values[inside], max_points)
    return SeriesView(
        metric=series.metric,
        component=series.component,
        sample_period_s=series.sample_period_s,
        points_in_window=int(inside.sum()),
        downsampled=t.size < int(inside.sum()),
        t=t.tolist(),
        values=y.tolist(),
    )
