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


class LatencyOverTime(BaseModel):
    """Latency percentiles of the requests completed in each window [k w, (k + 1) w).

    A window with no completion has null percentiles. `window_s` is a whole number
    of seconds chosen so that a run has at most 2,000 windows.
    """

    window_s: float
    count: list[int] = Field(description="Requests completed in each window.")
    p50: list[float | None]
    p95: list[float | None]
    p99: list[float | None]
    merged: bool = Field(
        default=False,
        description="True when windows were merged to fit `max_points`: each merged "
        "percentile is then the count-weighted mean of the windows' (for display only).",
    )


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
    over_time: LatencyOverTime | None = Field(
        default=None, description="p50, p95 and p99 per window of simulated time."
    )


class Throughput(BaseModel):
    """Completions per second."""

    mean_rps: float
    per_second: list[int] = Field(description="Completions in each second [i, i+1) of the run.")


class DurationStats(BaseModel):
    """Seconds spent somewhere (a server, an endpoint) by the requests that left it."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class ServerStats(BaseModel):
    """Summary of one server; queue statistics come from the sampled series."""

    cpu_utilisation: float = Field(description="Busy core-seconds / (cores x horizon).")
    ready_queue_mean: float | None
    ready_queue_max: float | None
    io_queue_mean: float | None
    io_queue_max: float | None
    ram_mean_mb: float | None
    ram_peak_mb: float | None
    cores: int = Field(default=1, description="Cores of the server (the scenario's cpu_cores).")
    ram_mb: float | None = Field(default=None, description="RAM of the server, in MB.")
    latency: DurationStats | None = Field(
        default=None,
        description="Time from arriving at the server to leaving it, over every request "
        "that left it.",
    )
    endpoints: dict[str, DurationStats] = Field(
        default_factory=dict,
        description="The same per endpoint; `count` is the requests each endpoint served.",
    )


class PoolStats(BaseModel):
    """Summary of one connection pool (`server:pool`)."""

    size: int
    utilisation: float = Field(description="Connection-seconds held / (size x horizon).")
    acquired: int = Field(description="Connections handed out.")
    wait_mean_s: float | None = Field(description="Mean wait for a connection, in seconds.")
    in_use_mean: float | None
    in_use_max: float | None
    waiting_mean: float | None
    waiting_max: float | None


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
    pools: dict[str, PoolStats] = Field(
        default_factory=dict, description="Connection pools by `server:pool`."
    )
    time_series: TimeSeries
    meta: RunMeta
