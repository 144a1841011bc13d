"""One replication's headline metrics, after its warm-up, from a run and its results document.

Metric names, all in SI units (seconds, requests per second, fractions, counts):

- `latency.mean`, `latency.p50`, `latency.p95`, `latency.p99`: response times of
  the requests completed after the warm-up;
- `throughput.mean_rps`: those completions over the simulated time after the warm-up;
- `throughput.goodput_rps`: the same number under the results document's name for it
  (completions within their timeout per second; late answers are not completions);
- `time_to_outcome.mean`, `.p50`, `.p95`, `.p99`: seconds from creation to the end of
  every request that ended after the warm-up, however it ended (a timeout at its timeout);
- `requests.not_completed_share`: (generated - completed) / generated, the whole run;
- `servers.<id>.cpu_utilisation`: busy core-seconds over cores x horizon, the whole run;
- `replica_groups.<id>.cpu_utilisation` and `.throughput_rps` (requests that left its
  replicas per second), the whole run: for a server written with `replicas`, whose
  replicas have no metric of their own, so that the metrics are the same whatever number
  of replicas a sweep sets;
- `requests.<outcome>`: every count of the results document's `requests`
  (`generated`, `completed`, `dropped`, `in_flight`, ...), the whole run;
- `requests.loss_fraction`: requests that ended other than completed, over generated;
- `recovery.recovered_share`, `recovery.not_recovered_share`, `recovery.recovery_s`, for a
  scenario with a transient trigger (`schemas.triggers`): 1 if the run recovered from every
  trigger (`results.recovery`) and 0 if not (their mean over the replications of a point
  is the share that recovered), its complement, and the longest recovery over the
  triggers. A trigger not recovered from counts the seconds from its end to the horizon or
  the next trigger, a lower bound, so that a mean or an objective is never flattered by
  leaving it out; one that could not be judged makes all three null;
- any of the latency, time-to-outcome, throughput and not-completed metrics over a window,
  `latency.p95@[3600,7200]` or `throughput.goodput_rps@peak` (see `windows`): computed
  only when the experiment names them.

The warm-up is a fixed number of simulated seconds, or detected by MSER-5 on
the response times in completion order; either way the replication reports
where it cut (`warmup_s`) and how many completions it left out (`discarded`).
"""

from array import array
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from asyncflow_backend.experiments.windows import WindowError, measure_window, parse_windowed
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas.results import Recovery, RequestCounts, SimulationResults
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.triggers import scenario_triggers
from asyncflow_backend.statistics import mser5

LATENCY_METRICS = ("latency.mean", "latency.p50", "latency.p95", "latency.p99")
THROUGHPUT_METRIC = "throughput.mean_rps"
GOODPUT_METRIC = "throughput.goodput_rps"
OUTCOME_METRICS = (
    "time_to_outcome.mean",
    "time_to_outcome.p50",
    "time_to_outcome.p95",
    "time_to_outcome.p99",
)
NOT_COMPLETED_METRIC = "requests.not_completed_share"
LOSS_METRIC = "requests.loss_fraction"
RECOVERED_METRIC = "recovery.recovered_share"
NOT_RECOVERED_METRIC = "recovery.not_recovered_share"
RECOVERY_TIME_METRIC = "recovery.recovery_s"
RECOVERY_METRICS = (RECOVERED_METRIC, NOT_RECOVERED_METRIC, RECOVERY_TIME_METRIC)
REQUEST_COUNTS = tuple(
    name for name, field in RequestCounts.model_fields.items() if field.annotation is int
)
"""Every count the results document has: new ways for a request to end join by themselves."""

GROUP_METRICS = ("cpu_utilisation", "throughput_rps")
"""The metrics of each replica group, under `replica_groups.<id>.`."""

Warmup = float | Literal["mser5"]


def metric_names(scenario: Scenario) -> list[str]:
    """Every metric a replication of `scenario` reports, in display order."""
    servers: list[str] = []
    for server in scenario.topology_graph.nodes.servers:
        if server.replicas is None:
            servers.append(f"servers.{server.id}.cpu_utilisation")
        else:
            servers += [f"replica_groups.{server.id}.{name}" for name in GROUP_METRICS]
    counts = [f"requests.{name}" for name in REQUEST_COUNTS]
    return [
        *LATENCY_METRICS,
        *OUTCOME_METRICS,
        THROUGHPUT_METRIC,
        GOODPUT_METRIC,
        *servers,
        *counts,
        LOSS_METRIC,
        NOT_COMPLETED_METRIC,
        *(RECOVERY_METRICS if scenario_triggers(scenario) else ()),
    ]


def recovery_metrics(recovery: Sequence[Recovery]) -> dict[str, float | None]:
    """The recovery metrics of one run's verdicts (module docstring); all None when a
    trigger could not be judged."""
    if any(verdict.recovered is None for verdict in recovery):
        return dict.fromkeys(RECOVERY_METRICS)
    recovered = all(verdict.recovered for verdict in recovery)
    longest = max(
        (verdict.recovery_s if verdict.recovered else verdict.judged_until_s - verdict.ended_at_s)
        or 0.0
        for verdict in recovery
    )
    return {
        RECOVERED_METRIC: float(recovered),
        NOT_RECOVERED_METRIC: float(not recovered),
        RECOVERY_TIME_METRIC: longest,
    }


class Replication(BaseModel):
    """One replication: its index, its seed, where its warm-up ended, and its metrics."""

    index: int = Field(description="From 0; the seed is child `index` of the root seed.")
    seed: int
    warmup_s: float = Field(description="Simulated seconds left out at the start.")
    discarded: int = Field(description="Completions left out as warm-up.")
    wall_seconds: float
    metrics: dict[str, float | None] = Field(
        description="Metric name to value; None when nothing was measured (no completions)."
    )


class ReplicationObserver:
    """Notes when each request of a run completes, then measures the run after its warm-up.

    Make it before the run starts. The warm-up is cut at the completion times
    themselves, so the cut, and every metric, is the same however the run is
    sliced into progress reports (the service and the command line slice
    differently): a fixed warm-up leaves out the completions before `warmup_s`;
    MSER-5 reports the time of the last completion it leaves out.
    """

    def __init__(
        self, runner: SimulationRunner, warmup: Warmup, windowed: Sequence[str] = ()
    ) -> None:
        # The runner's collector is where per-request latencies are; the results
        # document keeps only their summary, which cannot leave the warm-up out.
        self._collector = runner.model.collector
        self._collector.keep_completion_times()
        self._collector.keep_end_times()
        self._warmup = warmup
        self._scenario = runner.scenario
        self._windowed = windowed

    def _windowed_metrics(self) -> dict[str, float | None]:
        """Each windowed metric asked for; None for one whose window does not fit this
        point's scenario (the experiment checked it against the base scenario)."""
        collector = self._collector

        def values(raw: "array[float] | None") -> np.ndarray:
            return np.frombuffer(raw, dtype=np.float64) if raw else np.empty(0)

        arrays = (
            values(collector.completion_times),
            values(collector.latencies),
            values(collector.end_times),
            values(collector.end_latencies),
        )
        metrics: dict[str, float | None] = {}
        for name in self._windowed:
            try:
                metric = parse_windowed(name)
                start, end = metric.bounds(self._scenario)
            except WindowError:
                metrics[name] = None
                continue
            metrics[name] = measure_window(metric.base, start, end, *arrays)
        return metrics

    def _cut(self, latencies: np.ndarray) -> tuple[float, int]:
        raw = self._collector.completion_times
        times = np.frombuffer(raw, dtype=np.float64) if raw else np.empty(0)
        if self._warmup == "mser5":
            discarded = mser5(latencies)
            return (float(times[discarded - 1]) if discarded else 0.0), discarded
        if self._warmup <= 0:
            return 0.0, 0
        return float(self._warmup), int(np.searchsorted(times, self._warmup, side="left"))

    def _time_to_outcome(self, completed: np.ndarray, warmup_s: float) -> dict[str, float | None]:
        """The time-to-outcome metrics of the `completed` latencies kept after the warm-up
        pooled with the other ends at or after `warmup_s`."""
        collector = self._collector
        ends = np.empty(0)
        # The observer is made before the run: every end has its time.
        if collector.end_times:
            times = np.frombuffer(collector.end_times, dtype=np.float64)
            ends = np.frombuffer(collector.end_latencies, dtype=np.float64)[times >= warmup_s]
        values = np.concatenate((completed, ends))
        if not values.size:
            return dict.fromkeys(OUTCOME_METRICS)
        p50, p95, p99 = np.percentile(values, [50, 95, 99]).tolist()
        return dict(zip(OUTCOME_METRICS, (float(values.mean()), p50, p95, p99), strict=True))

    def measure(self, index: int, results: SimulationResults) -> Replication:
        """The replication's metrics; call once the run has finished."""
        raw = self._collector.latencies
        latencies = np.frombuffer(raw, dtype=np.float64) if len(raw) else np.empty(0)
        warmup_s, discarded = self._cut(latencies)
        kept = latencies[discarded:]
        metrics: dict[str, float | None] = dict.fromkeys(LATENCY_METRICS)
        if kept.size:
            p50, p95, p99 = np.percentile(kept, [50, 95, 99]).tolist()
            metrics |= {
                "latency.mean": float(kept.mean()),
                "latency.p50": p50,
                "latency.p95": p95,
                "latency.p99": p99,
            }
        horizon = results.meta.simulated_seconds
        measured_s = horizon - warmup_s
        metrics[THROUGHPUT_METRIC] = kept.size / measured_s if measured_s > 0 else None
        metrics[GOODPUT_METRIC] = metrics[THROUGHPUT_METRIC]
        metrics |= self._time_to_outcome(kept, warmup_s)
        replicas = {member for group in results.replica_groups.values() for member in group.servers}
        for server_id, stats in results.servers.items():
            if server_id not in replicas:
                metrics[f"servers.{server_id}.cpu_utilisation"] = stats.cpu_utilisation
        for name, group in results.replica_groups.items():
            for field in GROUP_METRICS:
                metrics[f"replica_groups.{name}.{field}"] = getattr(group, field)
        counts = results.requests
        for name in REQUEST_COUNTS:
            metrics[f"requests.{name}"] = float(getattr(counts, name))
        ended = counts.generated - counts.in_flight
        metrics[LOSS_METRIC] = (
            (ended - counts.completed) / counts.generated if counts.generated else None
        )
        metrics[NOT_COMPLETED_METRIC] = counts.not_completed_share
        if results.recovery is not None:
            metrics |= recovery_metrics(results.recovery)
        metrics |= self._windowed_metrics()
        return Replication(
            index=index,
            seed=results.meta.seed,
            warmup_s=warmup_s,
            discarded=discarded,
            wall_seconds=results.meta.wall_seconds,
            metrics=metrics,
        )


def run_replication(
    scenario: Scenario, index: int, seed: int, warmup: Warmup, windowed: Sequence[str] = ()
) -> Replication:
    """Run `scenario` at `seed` in this process and measure it, with the `windowed` metrics
    the experiment names.

    Raises what `SimulationRunner` raises (`ScenarioValidationError` for a scenario
    that fails the cross-section checks).
    """
    runner = SimulationRunner(scenario, seed=seed)
    observer = ReplicationObserver(runner, warmup, windowed)
    results = runner.run()
    return observer.measure(index, results)
