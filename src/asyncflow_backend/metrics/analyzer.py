"""From what the collectors recorded to the results document, with numpy."""

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from asyncflow_backend.config.constants import EndReason, Outcome, SampledMetric
from asyncflow_backend.metrics.breakdown import (
    HIDDEN,
    SERVER_PARTS,
    HopCategory,
    HopKind,
    HopTotals,
)
from asyncflow_backend.metrics.catalogue import (
    EDGE_METRICS,
    POOL_METRICS,
    SERVER_METRICS,
    MetricDefinition,
)
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.schemas.closed_users import user_steps
from asyncflow_backend.schemas.results import (
    AutoscalingStats,
    BreakdownPart,
    ClosedLoopStats,
    DurationStats,
    EdgeStats,
    EndCount,
    Histogram,
    LatencyOverTime,
    LatencyStats,
    NonFiniteResultError,
    OfferedLoad,
    PoolStats,
    ReplicaGroupStats,
    RequestCounts,
    ServerStats,
    Throughput,
    TimeSeries,
    TimeToOutcome,
)
from asyncflow_backend.schemas.workload import RqsGenerator

MAX_HISTOGRAM_BINS = 100
MAX_LATENCY_WINDOWS = 2000


def request_counts(collector: MetricsCollector, client_id: str, horizon_s: float) -> RequestCounts:
    """Generated, each outcome (in total, by place, by place and reason, per second) and
    still in flight; completions are counted at `client_id`."""
    seconds = math.ceil(horizon_s)
    counts = {outcome: collector.count(outcome) for outcome in Outcome}
    ends = [
        EndCount(outcome=outcome, place=place, reason=reason, count=count)
        for (outcome, place, reason), count in collector.ends.items()
    ]
    if counts[Outcome.COMPLETED]:
        ends.append(
            EndCount(
                outcome=Outcome.COMPLETED,
                place=client_id,
                reason=EndReason.ANSWERED,
                count=counts[Outcome.COMPLETED],
            )
        )
    order = {outcome: k for k, outcome in enumerate(Outcome)}
    ends.sort(key=lambda end: (order[Outcome(end.outcome)], end.place, end.reason))
    series = dict(collector.ends_per_second)
    if counts[Outcome.COMPLETED]:
        series[Outcome.COMPLETED] = collector.completions_per_second
    return RequestCounts(
        generated=collector.generated,
        completed=counts[Outcome.COMPLETED],
        dropped=counts[Outcome.DROPPED],
        in_flight=collector.generated - sum(counts.values()),
        dropped_at=_sorted(collector.ended_at(Outcome.DROPPED)),
        failed=counts[Outcome.FAILED],
        failed_at=_sorted(collector.ended_at(Outcome.FAILED)),
        timed_out=counts[Outcome.TIMED_OUT],
        timed_out_at=_sorted(collector.ended_at(Outcome.TIMED_OUT)),
        rejected=counts[Outcome.REJECTED],
        rejected_at=_sorted(collector.ended_at(Outcome.REJECTED)),
        attempts=collector.generated + collector.retries,
        retries=collector.retries,
        retries_refused=collector.retries_refused,
        attempts_per_second=(collector.attempts_per_second or [])[:seconds],
        late_answers=collector.late_answers,
        not_completed_share=(
            (collector.generated - counts[Outcome.COMPLETED]) / collector.generated
            if collector.generated
            else None
        ),
        ends=ends,
        per_second={
            outcome.value: series[outcome][:seconds] for outcome in Outcome if outcome in series
        },
    )


def _sorted(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items()))


def latency_stats(latencies: "array[float]") -> LatencyStats:
    """Moments, percentiles (linear interpolation) and a histogram of the latencies.

    Raises `NonFiniteResultError` if a latency is NaN or infinite.
    """
    values = np.frombuffer(latencies, dtype=np.float64) if len(latencies) else np.empty(0)
    if not np.isfinite(values).all():
        raise NonFiniteResultError(["latency"])
    if values.size == 0:
        return LatencyStats(
            count=0,
            mean=None,
            std=None,
            min=None,
            p50=None,
            p90=None,
            p95=None,
            p99=None,
            max=None,
            histogram=Histogram(edges=[], counts=[]),
        )
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99]).tolist()
    try:
        edges = np.histogram_bin_edges(values, bins="auto")
    except ValueError:
        # Latencies that differ by a few ulps: a range too narrow to split into bins.
        edges = np.array([values.min(), values.max()])
    if len(edges) > MAX_HISTOGRAM_BINS + 1:
        edges = np.linspace(values.min(), values.max(), MAX_HISTOGRAM_BINS + 1)
    counts, edges = np.histogram(values, bins=edges)
    return LatencyStats(
        count=int(values.size),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        min=float(values.min()),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=float(values.max()),
        histogram=Histogram(edges=edges.tolist(), counts=counts.tolist()),
    )


def time_to_outcome(collector: MetricsCollector, latency: LatencyStats) -> TimeToOutcome:
    """Count, mean, percentiles (linear interpolation) and max of the time to outcome: the
    completions' `latency` (their statistics, already computed) pooled with the seconds to
    every other end (`collector.end_latencies`).

    A run in which every request that ended completed reuses `latency` and computes
    nothing. Raises `NonFiniteResultError` if a time is NaN or infinite.
    """
    ends = collector.end_latencies
    if not len(ends):
        return TimeToOutcome(
            count=latency.count,
            mean=latency.mean,
            p50=latency.p50,
            p90=latency.p90,
            p95=latency.p95,
            p99=latency.p99,
            max=latency.max,
        )
    completed = collector.latencies
    parts = [np.frombuffer(ends, dtype=np.float64)]
    if len(completed):
        parts.append(np.frombuffer(completed, dtype=np.float64))
    values = np.concatenate(parts)
    if not np.isfinite(values).all():
        raise NonFiniteResultError(["time_to_outcome"])
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99]).tolist()
    return TimeToOutcome(
        count=int(values.size),
        mean=float(values.mean()),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=float(values.max()),
    )


def latency_over_time(
    latencies: "array[float]", completions_per_second: Sequence[int], horizon_s: float
) -> LatencyOverTime:
    """p50, p95 and p99 of the latencies completed in each window of simulated time.

    Latencies are recorded in completion order and completions are counted per
    second, so the requests of window k are a slice of the latency array: no
    completion time is kept per request. Windows are whole seconds, as few as
    keep the count of windows at or under MAX_LATENCY_WINDOWS.
    """
    seconds = max(1, math.ceil(horizon_s))
    window = max(1, math.ceil(seconds / MAX_LATENCY_WINDOWS))
    per_second = np.asarray(completions_per_second[:seconds], dtype=np.int64)
    per_second = np.pad(per_second, (0, seconds - per_second.size))
    windows = math.ceil(seconds / window)
    counts = np.add.reduceat(per_second, np.arange(0, seconds, window))
    bounds = np.concatenate(([0], np.cumsum(counts)))
    values = np.frombuffer(latencies, dtype=np.float64) if len(latencies) else np.empty(0)
    p50: list[float | None] = [None] * windows
    p95: list[float | None] = [None] * windows
    p99: list[float | None] = [None] * windows
    for k in np.flatnonzero(counts):
        p50[k], p95[k], p99[k] = np.percentile(
            values[bounds[k] : bounds[k + 1]], [50, 95, 99]
        ).tolist()
    return LatencyOverTime(window_s=float(window), count=counts.tolist(), p50=p50, p95=p95, p99=p99)


def throughput(collector: MetricsCollector, horizon_s: float) -> Throughput:
    """Answers per second over the horizon (late ones included) and their per-second series,
    and the goodput: completions (answers within the timeout) per second."""
    seconds = math.ceil(horizon_s)
    per_second = collector.completions_per_second[:seconds]
    late = collector.late_answers_per_second
    if late is not None:
        per_second = [a + b for a, b in zip(per_second, late, strict=False)]
    completed = collector.completed
    return Throughput(
        mean_rps=(completed + collector.late_answers) / horizon_s,
        per_second=per_second,
        goodput_rps=completed / horizon_s,
    )


Probes = dict[tuple[SampledMetric, str], Probe]


def series_summary(
    definitions: Iterable[MetricDefinition[Any]], component: str, probes: Probes
) -> dict[str, float | None]:
    """The mean and peak of each of `definitions` for `component`, under the summary field
    names the catalogue gives (None for a metric that was not sampled).
    """
    fields: dict[str, float | None] = {}
    for d in definitions:
        probe = probes.get((d.metric, component))
        if probe is None or not len(probe.values):
            fields[d.mean_field] = fields[d.max_field] = None
            continue
        values = np.frombuffer(probe.values, dtype=np.float64)
        fields[d.mean_field] = float(values.mean())
        fields[d.max_field] = float(values.max())
    return fields


def duration_stats(samples: "Sequence[array[float]]") -> DurationStats:
    """Count, mean, p50, p95, p99 and max of the durations in `samples`, pooled."""
    parts = [np.frombuffer(a, dtype=np.float64) for a in samples if len(a)]
    if not parts:
        return DurationStats(count=0, mean=None, p50=None, p95=None, p99=None, max=None)
    values = np.concatenate(parts)
    p50, p95, p99 = np.percentile(values, [50, 95, 99]).tolist()
    return DurationStats(
        count=int(values.size),
        mean=float(values.mean()),
        p50=p50,
        p95=p95,
        p99=p99,
        max=float(values.max()),
    )


def server_stats(
    server_id: str,
    busy_core_seconds: float,
    core_seconds: float,
    cores: int,
    ram_mb: float,
    endpoint_times: "Mapping[str, array[float]]",
    horizon_s: float,
    probes: Probes,
) -> ServerStats:
    """Utilisation, time on the server (all and per endpoint), and the sampled summaries.

    Utilisation is busy core-seconds over the core-seconds the server had
    (`cores` x horizon unless a capacity schedule changed them); 0 for a
    server that never had a core.
    """
    utilisation = busy_core_seconds / core_seconds if core_seconds > 0 else 0.0
    return ServerStats(
        cpu_utilisation=min(1.0, utilisation),
        mean_cores=core_seconds / horizon_s,
        cores=cores,
        ram_mb=ram_mb,
        latency=duration_stats(list(endpoint_times.values())),
        endpoints={name: duration_stats([times]) for name, times in endpoint_times.items()},
        **series_summary(SERVER_METRICS, server_id, probes),
    )


def replica_group_stats(
    members: Sequence[str],
    servers: Mapping[str, ServerStats],
    visit_times: "Sequence[array[float]]",
    horizon_s: float,
    probes: Probes,
) -> ReplicaGroupStats:
    """A replica group's numbers from its replicas' (`members`, ids of `servers`).

    Throughput: the requests that left any replica (`visit_times`, every endpoint of every
    replica) per second. Utilisation: busy core-seconds over core-seconds, summed over the
    replicas. Queues: each sampled series summed over the replicas tick by tick, so the
    mean is the sum of the means and the max is the peak of the group's total. Latency:
    the replicas' times on the server pooled.
    """
    stats = [servers[member] for member in members]
    core_seconds = sum((s.mean_cores or s.cores) * horizon_s for s in stats)
    busy = sum(s.cpu_utilisation * (s.mean_cores or s.cores) * horizon_s for s in stats)
    latency = duration_stats(visit_times)
    summed: dict[str, float | None] = {}
    for d in SERVER_METRICS:
        if d.mean_field not in ReplicaGroupStats.model_fields:
            continue
        series = [probes.get((d.metric, member)) for member in members]
        if any(probe is None or not len(probe.values) for probe in series):
            summed[d.mean_field] = summed[d.max_field] = None
            continue
        total = np.sum([np.frombuffer(p.values, dtype=np.float64) for p in series if p], axis=0)
        summed[d.mean_field] = float(total.mean())
        summed[d.max_field] = float(total.max())
    return ReplicaGroupStats(
        replicas=len(members),
        servers=list(members),
        throughput_rps=latency.count / horizon_s,
        cpu_utilisation=min(1.0, busy / core_seconds) if core_seconds > 0 else 0.0,
        latency=latency,
        **summed,
    )


def autoscaled_group_stats(
    group: ReplicaGroupStats,
    servers: Mapping[str, ServerStats],
    autoscaling: AutoscalingStats,
    horizon_s: float,
) -> ReplicaGroupStats:
    """`group` with its autoscaler's summary, and its utilisation taken over the
    core-seconds of the replicas in service (`replicas_mean`) rather than of all
    `max_replicas`, most of which may never serve."""
    stats = [servers[member] for member in group.servers]
    busy = sum(s.cpu_utilisation * (s.mean_cores or s.cores) * horizon_s for s in stats)
    cores = stats[0].mean_cores or stats[0].cores
    core_seconds = cores * autoscaling.replicas_mean * horizon_s
    return group.model_copy(
        update={
            "autoscaling": autoscaling,
            "cpu_utilisation": min(1.0, busy / core_seconds) if core_seconds > 0 else 0.0,
        }
    )


def pool_stats(
    pool_id: str,
    size: int,
    busy_seconds: float,
    acquired: int,
    wait_seconds_total: float,
    horizon_s: float,
    probes: Probes,
) -> PoolStats:
    """Utilisation, waits and the sampled summaries of one connection pool."""
    return PoolStats(
        size=size,
        utilisation=min(1.0, busy_seconds / (size * horizon_s)),
        acquired=acquired,
        wait_mean_s=wait_seconds_total / acquired if acquired else None,
        **series_summary(POOL_METRICS, pool_id, probes),
    )


def edge_stats(edge_id: str, dropped: int, probes: Probes) -> EdgeStats:
    """Open connections and drops of one edge."""
    return EdgeStats(dropped=dropped, **series_summary(EDGE_METRICS, edge_id, probes))


def closed_loop(
    users_mean: float,
    users_max: int,
    think_times: "array[float]",
    latencies: "array[float]",
    horizon_s: float,
) -> ClosedLoopStats:
    """N, Z, R and X of a closed workload, and the X the interactive law predicts."""
    think = float(np.frombuffer(think_times).mean()) if len(think_times) else None
    response = float(np.frombuffer(latencies).mean()) if len(latencies) else None
    cycle = think + response if think is not None and response is not None else None
    return ClosedLoopStats(
        users_mean=users_mean,
        users_max=users_max,
        think_time_mean_s=think,
        response_time_mean_s=response,
        throughput_rps=len(latencies) / horizon_s,
        cycle_time_s=cycle,
        interactive_law_rps=users_mean / cycle if cycle else None,
    )


def offered_load(workloads: Sequence[RqsGenerator], horizon_s: float) -> OfferedLoad | None:
    """The mean arrival rate of the rate schedules and the mean population of the closed
    workloads among `workloads`, each summed over them, in windows of whole seconds (as
    many as the latency windows); None when neither is there (users per window only)."""
    seconds = max(1, math.ceil(horizon_s))
    window = max(1, math.ceil(seconds / MAX_LATENCY_WINDOWS))
    bounds = np.minimum(np.arange(0, seconds + window, window, dtype=np.float64), horizon_s)
    bounds = bounds[: math.ceil(seconds / window) + 1]
    widths = np.diff(bounds)
    rates: np.ndarray | None = None
    users: np.ndarray | None = None
    for workload in workloads:
        if workload.arrival_rate is not None:
            cumulative = np.array([workload.arrival_rate.integral(t) for t in bounds])
            rates = (0 if rates is None else rates) + _per_width(np.diff(cumulative), widths)
        elif workload.users is not None:
            steps = user_steps(workload.users, horizon_s)
            times = np.array([t for t, _ in steps] + [horizon_s])
            counts = np.array([n for _, n in steps], dtype=np.float64)
            # The population's integral at each bound, from its steps, over each window.
            area = np.concatenate(([0.0], np.cumsum(np.diff(times) * counts)))
            at = np.interp(bounds, times, area)
            users = (0 if users is None else users) + _per_width(np.diff(at), widths)
    if rates is None and users is None:
        return None
    return OfferedLoad(
        window_s=float(window),
        rate_per_s=None if rates is None else rates.tolist(),
        users=None if users is None else users.tolist(),
    )


def _per_width(amounts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    per_width: np.ndarray = np.divide(amounts, widths, out=np.zeros_like(widths), where=widths > 0)
    return per_width


def time_series(period_s: float, probes: list[Probe]) -> TimeSeries:
    """Every sampled series, grouped by metric then component."""
    series: dict[str, dict[str, list[float]]] = {}
    for probe in probes:
        series.setdefault(probe.metric.value, {})[probe.component_id] = probe.values.tolist()
    return TimeSeries(sample_period_s=period_s, series=series)


def breakdown(
    hops: HopTotals,
    visits: Mapping[str, float],
    mean_latency: float | None,
    order: Sequence[str],
) -> list[BreakdownPart]:
    """The mean latency split in proportion to the request-seconds of each hop slot
    (`metrics.breakdown`), parts of no time left out, places in `order` (edges and
    servers in the order requests meet them; others after them, by id).

    A server's `wait` is its `visits` (seconds by server id) less its other categories
    and its single-target calls (booked at the places they visit), floored at 0: CPU
    and I/O are booked when they start and visits when they end, so a server whose
    last requests are still in it at the horizon may have booked more than its visits.
    """
    if not mean_latency:
        return []
    seconds = hops.seconds()
    places: dict[tuple[HopKind, str], dict[HopCategory, float]] = {}
    for (kind, place, category), value in seconds.items():
        places.setdefault((kind, place), {})[category] = value
    rank = {place: k for k, place in enumerate(order)}
    parts: list[tuple[HopKind, str, HopCategory, float]] = []
    for (kind, place), booked in sorted(
        places.items(), key=lambda item: (rank.get(item[0][1], len(rank)), item[0][1])
    ):
        if kind is HopKind.EDGE:
            parts.append((kind, place, HopCategory.NETWORK, booked[HopCategory.NETWORK]))
            continue
        shown = {c: v for c, v in booked.items() if c not in HIDDEN}
        others = sum(shown.values()) + booked.get(HopCategory.NESTED, 0.0)
        shown[HopCategory.WAIT] = max(0.0, visits.get(place, 0.0) - others)
        parts += [(kind, place, c, shown[c]) for c in SERVER_PARTS if c in shown]
    total = sum(value for *_, value in parts)
    if total <= 0:
        return []
    return [
        BreakdownPart(
            kind=kind.value,
            place=place,
            category=category.value,
            mean_s=mean_latency * value / total,
            share=value / total,
        )
        for kind, place, category, value in parts
        if value > 0
    ]
