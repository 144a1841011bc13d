"""From what the collectors recorded to the results document, with numpy."""

from array import array

import numpy as np

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.schemas.results import (
    EdgeStats,
    Histogram,
    LatencyStats,
    RequestCounts,
    ServerStats,
    Throughput,
    TimeSeries,
)

MAX_HISTOGRAM_BINS = 100


def request_counts(collector: MetricsCollector) -> RequestCounts:
    """Generated, completed, dropped and still in flight."""
    completed = collector.completed
    dropped = collector.dropped
    return RequestCounts(
        generated=collector.generated,
        completed=completed,
        dropped=dropped,
        in_flight=collector.generated - completed - dropped,
        dropped_at=dict(sorted(collector.dropped_at.items())),
    )


def latency_stats(latencies: "array[float]") -> LatencyStats:
    """Moments, percentiles (linear interpolation) and a histogram of the latencies."""
    values = np.frombuffer(latencies, dtype=np.float64) if len(latencies) else np.empty(0)
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
    edges = np.histogram_bin_edges(values, bins="auto")
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


def throughput(collector: MetricsCollector, horizon_s: float) -> Throughput:
    """Mean completions per second over the horizon, and the per-second series."""
    per_second = collector.completions_per_second[: int(np.ceil(horizon_s))]
    return Throughput(mean_rps=collector.completed / horizon_s, per_second=per_second)


def _series_stats(
    probes: dict[tuple[SampledMetric, str], Probe], metric: SampledMetric, component: str
) -> tuple[float | None, float | None]:
    probe = probes.get((metric, component))
    if probe is None or not len(probe.values):
        return None, None
    values = np.frombuffer(probe.values, dtype=np.float64)
    return float(values.mean()), float(values.max())


def server_stats(
    server_id: str,
    busy_core_seconds: float,
    cores: int,
    horizon_s: float,
    probes: dict[tuple[SampledMetric, str], Probe],
) -> ServerStats:
    """Utilisation and the queue and RAM summaries of one server."""
    ready_mean, ready_max = _series_stats(probes, SampledMetric.READY_QUEUE_LEN, server_id)
    io_mean, io_max = _series_stats(probes, SampledMetric.EVENT_LOOP_IO_SLEEP, server_id)
    ram_mean, ram_max = _series_stats(probes, SampledMetric.RAM_IN_USE, server_id)
    return ServerStats(
        cpu_utilisation=min(1.0, busy_core_seconds / (cores * horizon_s)),
        ready_queue_mean=ready_mean,
        ready_queue_max=ready_max,
        io_queue_mean=io_mean,
        io_queue_max=io_max,
        ram_mean_mb=ram_mean,
        ram_peak_mb=ram_max,
    )


def edge_stats(
    edge_id: str, dropped: int, probes: dict[tuple[SampledMetric, str], Probe]
) -> EdgeStats:
    """Open connections and drops of one edge."""
    mean, peak = _series_stats(probes, SampledMetric.EDGE_CONCURRENT_CONNECTION, edge_id)
    return EdgeStats(connections_mean=mean, connections_max=peak, dropped=dropped)


def time_series(period_s: float, probes: list[Probe]) -> TimeSeries:
    """Every sampled series, grouped by metric then component."""
    series: dict[str, dict[str, list[float]]] = {}
    for probe in probes:
        series.setdefault(probe.metric.value, {})[probe.component_id] = probe.values.tolist()
    return TimeSeries(sample_period_s=period_s, series=series)
