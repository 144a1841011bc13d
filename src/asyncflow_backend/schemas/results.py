"""The results document: the same JSON from `asyncflow run --json` and from the API."""

from pydantic import BaseModel, Field


class RequestCounts(BaseModel):
    """Where every generated request ended up: generated = completed + dropped + in_flight."""

    generated: int
    completed: int
    dropped: int
    in_flight: int = Field(description="Still in the system when the horizon was reached.")
    dropped_at: dict[str, int] = Field(description="Dropped requests by edge id.")


class Histogram(BaseModel):
    """Latency histogram: `counts[i]` latencies fell in [edges[i], edges[i+1])."""

    edges: list[float]
    counts: list[int]


class LatencyStats(BaseModel):
    """Latency of completed requests, in seconds (client to client)."""

    count: int
    mean: float | None
    std: float | None
    min: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    histogram: Histogram


class Throughput(BaseModel):
    """Completions per second."""

    mean_rps: float
    per_second: list[int] = Field(description="Completions in each second [i, i+1) of the run.")


class ServerStats(BaseModel):
    """Summary of one server; queue statistics come from the sampled series."""

    cpu_utilisation: float = Field(description="Busy core-seconds / (cores x horizon).")
    ready_queue_mean: float | None
    ready_queue_max: float | None
    io_queue_mean: float | None
    io_queue_max: float | None
    ram_mean_mb: float | None
    ram_peak_mb: float | None


class EdgeStats(BaseModel):
    """Summary of one edge."""

    connections_mean: float | None
    connections_max: float | None
    dropped: int


class TimeSeries(BaseModel):
    """Sampled series: `series[metric][component][k]` was read at t = k * sample_period_s."""

    sample_period_s: float
    series: dict[str, dict[str, list[float]]]


class RunMeta(BaseModel):
    """How the run was made; everything needed to replay it."""

    engine_version: str
    seed: int
    simulated_seconds: float
    wall_seconds: float
    events_processed: int


class SimulationResults(BaseModel):
    """Everything a run measured."""

    requests: RequestCounts
    latency: LatencyStats
    throughput: Throughput
    servers: dict[str, ServerStats]
    edges: dict[str, EdgeStats]
    time_series: TimeSeries
    meta: RunMeta
