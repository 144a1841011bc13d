"""The results document: the same JSON from `asyncflow run --json` and from the API.

No number in it is ever NaN or infinite: JSON has no such values, SQLite
would serve them as null and Postgres refuses them. Building a document with
one raises `NonFiniteResultError`, which fails the run with that reason rather
than storing a wrong number.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class NonFiniteResultError(ValueError):
    """A run measured a NaN or an infinite number; `paths` says where in the document."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        super().__init__(
            f"the run measured a number that is not finite (NaN or infinity) at {shown}; "
            "nothing was stored. The scenario's numbers are too extreme for the engine."
        )

    @classmethod
    def from_validation(cls, exc: ValidationError) -> "NonFiniteResultError | None":
        """The error for a results model's failed validation, or None if it is not about
        non-finite numbers (a bug, which should propagate as it is)."""
        errors = exc.errors(include_url=False)
        if not errors or any(error["type"] != "finite_number" for error in errors):
            return None
        prefix = _DOCUMENT_PATH.get(exc.title, exc.title)
        return cls([".".join((prefix, *(str(p) for p in e["loc"]))).lstrip(".") for e in errors])


_DOCUMENT_PATH = {
    "SimulationResults": "",
    "RequestCounts": "requests",
    "EndCount": "requests.ends.<i>",
    "LatencyStats": "latency",
    "TimeToOutcome": "time_to_outcome",
    "LatencyOverTime": "latency.over_time",
    "Histogram": "latency.histogram",
    "Throughput": "throughput",
    "ServerStats": "servers.<id>",
    "ReplicaGroupStats": "replica_groups.<id>",
    "AutoscalingStats": "replica_groups.<id>.autoscaling",
    "AutoscalerTicks": "replica_groups.<id>.autoscaling.ticks",
    "ScalingEvent": "replica_groups.<id>.autoscaling.events[]",
    "DurationStats": "servers.<id>.latency",
    "PoolStats": "pools.<id>",
    "CallStats": "calls.<id>",
    "EdgeStats": "edges.<id>",
    "BreakdownPart": "breakdown[]",
    "TimeSeries": "time_series",
    "RunMeta": "meta",
    "ClosedLoopStats": "closed",
    "OfferedLoad": "offered_load",
    "ClassStats": "classes.<id>",
    "Recovery": "recovery[]",
}


class FiniteModel(BaseModel):
    """A part of the results document: every float must be finite."""

    model_config = ConfigDict(allow_inf_nan=False)


class EndCount(FiniteModel):
    """Requests that ended one way, at one place, for one reason."""

    outcome: str = Field(
        description="completed, dropped, timed_out, rejected or failed (see `Outcome`)."
    )
    place: str = Field(
        description="The node or edge where it ended: the client for a completion or a "
        "timeout the servers keep working on, the edge that lost it, the server that "
        "rejected it or that it was withdrawn from."
    )
    reason: str = Field(description="Why (see `EndReason` in the results documentation).")
    count: int


class RequestCounts(FiniteModel):
    """Where every generated request ended up:
    generated = completed + dropped + failed + timed_out + rejected + in_flight."""

    generated: int
    completed: int = Field(description="Answered within their timeout (all, without one).")
    dropped: int
    in_flight: int = Field(description="Still in the system when the horizon was reached.")
    dropped_at: dict[str, int] = Field(description="Dropped requests by edge id.")
    failed: int = Field(
        default=0, description="Requests that failed because a call was lost, refused or late."
    )
    failed_at: dict[str, int] = Field(
        default_factory=dict,
        description="Failed requests by the edge that lost the call, the server that "
        "refused it or failed with the work on it, or the call step that timed out "
        "(`server:endpoint#step`).",
    )
    timed_out: int = Field(default=0, description="Requests whose client timeout fired.")
    timed_out_at: dict[str, int] = Field(
        default_factory=dict,
        description="Timed-out requests by where they were: the client when the servers keep "
        "working on them, else the server they were withdrawn from.",
    )
    rejected: int = Field(
        default=0,
        description="Requests refused at once by a server's admission control, by a server "
        "that was down, by a balancer with no server up or by a balancer's rate limit.",
    )
    rejected_at: dict[str, int] = Field(
        default_factory=dict, description="Rejected requests by server or balancer id."
    )
    attempts: int = Field(
        default=0,
        description="Requests put on the wire: first attempts (the generated requests) plus "
        "retries. Every other count here is per request, which ends once, with the end of its "
        "last attempt.",
    )
    retries: int = Field(default=0, description="Attempts the client sent again.")
    retries_refused: int = Field(
        default=0, description="Retries the client's retry budget did not allow."
    )
    attempts_per_second: list[int] = Field(
        default_factory=list,
        description="With client retries: attempts the client sent in each second [i, i+1), "
        "retries included (the offered load); empty without retries.",
    )
    late_answers: int = Field(
        default=0,
        description="Answers that reached the client after their request timed out: work "
        "done for nothing (counted in the throughput, not in the goodput).",
    )
    not_completed_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of the generated requests that did not complete: (generated - "
        "completed) / generated, so dropped, failed, timed out, rejected and still in flight "
        "at the end; null with no request generated (and in documents stored before it "
        "existed). Read it beside any latency of completed requests, which leaves them out.",
    )
    ends: list[EndCount] = Field(
        default_factory=list,
        description="Every end by outcome, place and reason, completions included.",
    )
    per_second: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Requests that ended in each second [i, i+1) of the run, by outcome; an "
        "outcome that never happened is left out.",
    )


class Histogram(FiniteModel):
    """Latency histogram: `counts[i]` latencies fell in [edges[i], edges[i+1])."""

    edges: list[float]
    counts: list[int]


class LatencyOverTime(FiniteModel):
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


class LatencyStats(FiniteModel):
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


class Throughput(FiniteModel):
    """Answers reaching the client per second, and the goodput: those in time.

    Without a client timeout every answer is in time and the two are equal.
    """

    mean_rps: float = Field(description="Answers per second, late ones included.")
    per_second: list[int] = Field(
        description="Answers in each second [i, i+1) of the run, late ones included."
    )
    goodput_rps: float | None = Field(
        default=None,
        description="Requests completed within their timeout per second (`requests.per_second"
        ".completed` is its series); null only in documents stored before it existed.",
    )


class DurationStats(FiniteModel):
    """Seconds spent somewhere (a server, an endpoint) by the requests that left it."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class TimeToOutcome(FiniteModel):
    """Seconds from its creation to its end, of every request that ended by the horizon,
    however it ended: a completion at its answer, a timeout at the timeout (the client's,
    counted from the first attempt with retries), a drop, failure or rejection when the
    client learnt of it. Requests still in flight at the horizon are left out.

    Unlike `latency`, which counts completions only, it does not look better when requests
    fail: a system that times most requests out shows its timeout here.
    """

    count: int = Field(description="Requests that ended, completions included.")
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None


class ServerStats(FiniteModel):
    """Summary of one server; queue statistics come from the sampled series."""

    cpu_utilisation: float = Field(
        description="Busy core-seconds / core-seconds the server had (cores x horizon "
        "without a capacity schedule)."
    )
    ready_queue_mean: float | None
    ready_queue_max: float | None
    io_queue_mean: float | None
    io_queue_max: float | None
    ram_mean_mb: float | None
    ram_peak_mb: float | None
    cores: int = Field(default=1, description="Cores of the server (the scenario's cpu_cores).")
    mean_cores: float | None = Field(
        default=None,
        description="Cores the server had on average over the horizon: `cores` unless its "
        "capacity_schedule changed them.",
    )
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
    availability: float = Field(
        default=1.0,
        description="Fraction of the horizon the server was not failed (its `failures`): "
        "1 for a server that never fails. Outages are not counted here.",
    )
    failures: int = Field(default=0, description="Failures that began within the horizon.")
    downtime_s: float = Field(
        default=0.0, description="Seconds of the horizon the server spent failed."
    )
    failure_windows: list[tuple[float, float]] = Field(
        default_factory=list,
        description="[failure, repair] times in seconds of the first 500 failures, a "
        "failure not repaired by the horizon ending there: what the charts shade.",
    )


class ScalingEvent(FiniteModel):
    """One change of an autoscaled group's size."""

    t: float = Field(description="The sync tick, in seconds.")
    replicas_before: int
    replicas_after: int


class AutoscalerTicks(FiniteModel):
    """Each sync of an autoscaler, in parallel lists (the first 10,000 ticks)."""

    t: list[float] = Field(description="Tick times: every `sync_period_s` from one period on.")
    metric: list[float | None] = Field(
        description="The metric averaged over the ready replicas (null: none was ready)."
    )
    ready: list[int] = Field(description="Ready replicas the metric was read from.")
    recommended: list[int | None] = Field(
        description="Replicas the metric asked for, before stabilisation and policies."
    )
    replicas: list[int] = Field(description="Replicas in service after the decision.")


class AutoscalingStats(FiniteModel):
    """What a group's autoscaler did."""

    metric: str
    target: float
    replicas_mean: float = Field(
        description="Replicas in service (starting or ready) averaged over the horizon: "
        "replica-seconds over the horizon, what the group costs."
    )
    replicas_min: int
    replicas_max: int
    replicas_over_time: list[tuple[float, int]] = Field(
        description="[time, replicas in service] at 0, at each change and at the horizon: "
        "a step series."
    )
    ready_over_time: list[tuple[float, int]] = Field(
        description="[time, replicas taking traffic] likewise: a replica added joins it "
        "after `startup_delay_s`, a replica removed leaves it at once (and drains)."
    )
    events: list[ScalingEvent] = Field(description="Every change of size, in time order.")
    ticks: AutoscalerTicks


class ReplicaGroupStats(FiniteModel):
    """A replica group (a server written with `replicas`) taken as one: its replicas'
    numbers pooled. Each replica's own are in `servers`."""

    replicas: int
    servers: list[str] = Field(description="The ids of its replicas in `servers`.")
    throughput_rps: float = Field(
        description="Requests that left any of its replicas, per second of the horizon."
    )
    cpu_utilisation: float = Field(
        description="Busy core-seconds over the core-seconds of all its replicas: the "
        "replicas' utilisations averaged, weighted by their cores. With an autoscaler, over "
        "the core-seconds of the replicas in service (`autoscaling.replicas_mean`)."
    )
    ready_queue_mean: float | None = Field(
        description="Requests waiting for a core in all its replicas together, on average "
        "(the sum of the replicas' means); null when `ready_queue_len` is not sampled."
    )
    ready_queue_max: float | None = Field(
        description="The largest sampled sum of its replicas' ready queues."
    )
    io_queue_mean: float | None = Field(
        description="Requests in I/O in all its replicas together, on average."
    )
    io_queue_max: float | None = Field(description="The largest sampled sum of their I/O queues.")
    latency: DurationStats = Field(
        description="Time from arriving at a replica to leaving it, over every request that "
        "left any of them (pooled, so the percentiles are of all those requests)."
    )
    autoscaling: AutoscalingStats | None = Field(
        default=None,
        description="The group's autoscaler: its size over time and its decisions; null "
        "without `autoscaler`. `replicas` and `servers` are then all `max_replicas` of them.",
    )


class CallStats(FiniteModel):
    """One call step (`server:endpoint#step`): its sub-requests and their answers."""

    target: str = Field(description="The server or load balancer called.")
    sent: int = Field(description="Sub-requests sent, every attempt counted.")
    answered: int
    failed: int = Field(
        description="Sub-requests (attempts) lost on an edge, going or coming back, or "
        "refused by the called server's admission control."
    )
    timed_out: int = Field(
        default=0,
        description="Sub-requests not answered when the step's timeout fired (an answer that "
        "comes later counts in `answered` too).",
    )
    retries: int = Field(
        default=0,
        description="Sub-requests sent again by the step's retry policy (included in `sent`).",
    )
    circuit_opened: int = Field(
        default=0,
        description="Times the step's circuit breaker opened (the same for every target of "
        "the step).",
    )
    circuit_refused: int = Field(
        default=0,
        description="Calls of the step its circuit breaker failed at once, sending nothing "
        "(the same for every target of the step).",
    )
    latency: DurationStats = Field(
        description="Seconds from sending each answered sub-request to its answer."
    )


class PoolStats(FiniteModel):
    """Summary of one connection pool (`server:pool`)."""

    size: int
    utilisation: float = Field(description="Connection-seconds held / (size x horizon).")
    acquired: int = Field(description="Connections handed out.")
    wait_mean_s: float | None = Field(description="Mean wait for a connection, in seconds.")
    in_use_mean: float | None
    in_use_max: float | None
    waiting_mean: float | None
    waiting_max: float | None


class EdgeStats(FiniteModel):
    """Summary of one edge."""

    connections_mean: float | None
    connections_max: float | None
    dropped: int


class BreakdownPart(FiniteModel):
    """One part of the mean response time: a place and what the time there went on."""

    kind: Literal["edge", "server"]
    place: str = Field(description="The edge or server id.")
    category: Literal["network", "wait", "cpu", "io", "pool_wait", "calls"] = Field(
        description="`network` on an edge; on a server `wait` (for a core, or for RAM "
        "before the first step), `cpu`, `io`, `pool_wait` (for a pool connection) or "
        "`calls` (for the answers of a parallel call)."
    )
    mean_s: float = Field(
        ge=0, description="Seconds of the mean latency spent here; the parts sum to it."
    )
    share: float = Field(ge=0, le=1, description="mean_s over the mean latency.")


class TimeSeries(FiniteModel):
    """Sampled series: `series[metric][component][k]` was read at t = k * sample_period_s."""

    sample_period_s: float
    series: dict[str, dict[str, list[float]]]


class ClosedLoopStats(FiniteModel):
    """A closed workload read the way closed models are: N users, response time R, think
    time Z and throughput X, with the interactive response time law X = N / (R + Z)."""

    users_mean: float = Field(description="N: the population averaged over the horizon.")
    users_max: int = Field(description="The largest population.")
    think_time_mean_s: float | None = Field(description="Z: mean think time drawn, in seconds.")
    response_time_mean_s: float | None = Field(
        description="R: mean latency of the completed requests, in seconds."
    )
    throughput_rps: float = Field(description="X: completed requests per second.")
    cycle_time_s: float | None = Field(description="R + Z, in seconds.")
    interactive_law_rps: float | None = Field(
        description="N / (R + Z): the throughput the interactive response time law predicts."
    )


class OfferedLoad(FiniteModel):
    """The load the workload offered over time, in windows [k w, (k + 1) w): the mean
    arrival rate of a rate schedule, or the users of a closed workload. Computed from
    the scenario, not counted: the curve the throughput follows."""

    window_s: float
    rate_per_s: list[float] | None = Field(
        default=None, description="Mean arrival rate λ over each window (a rate schedule)."
    )
    users: list[float] | None = Field(
        default=None, description="Mean population over each window (a closed workload)."
    )


class ClassStats(FiniteModel):
    """One workload class (`rqs_input` or one of `workload_classes`, by generator id)."""

    generated: int
    completed: int
    ended: dict[str, int] = Field(
        description="Its requests that ended other than completed, by outcome (dropped, "
        "failed, rejected, timed_out)."
    )
    throughput_rps: float = Field(description="Completed requests of the class per second.")
    latency: DurationStats = Field(
        description="Client-to-client latency of its completed requests."
    )
    closed: ClosedLoopStats | None = Field(
        default=None, description="The closed-model reading of a closed class; else null."
    )


class Recovery(FiniteModel):
    """Whether goodput and queues came back to their level before a transient trigger
    once it ended, under the rule of docs/overload.md ("Does it recover?")."""

    trigger: str = Field(
        description="The event id, `server:capacity@start` for a dip of a capacity schedule, "
        "`workload:rate@start` for a load spike; ids joined by `+` for overlapping windows."
    )
    kind: str = Field(
        description="The event's start kind (server_down, network_spike_start...), "
        "capacity_dip or load_spike."
    )
    started_at_s: float
    ended_at_s: float
    recovered: bool | None = Field(
        description="True once a window after the end met the baseline; False if none did by "
        "`judged_until_s` (at the horizon: a metastable failure); null when it could not be "
        "judged (no baseline before the trigger, or no whole window after its end)."
    )
    recovered_at_s: float | None = Field(
        description="Start of the first window after the end that met the baseline."
    )
    recovery_s: float | None = Field(description="recovered_at_s - ended_at_s.")
    judged_until_s: float = Field(
        description="The horizon, or the start of the next trigger: windows end by then."
    )
    baseline_goodput_rps: float | None = Field(
        description="Mean goodput over the baseline window before the trigger."
    )
    baseline_queue: float | None = Field(
        description="Highest mean total queue (ready queues and pool queues) over a window "
        "of the baseline; null when neither queue was sampled (goodput alone is judged)."
    )
    note: str = Field(description="The verdict in words.")


class RunMeta(FiniteModel):
    """How the run was made; everything needed to replay it."""

    engine_version: str
    seed: int
    simulated_seconds: float
    wall_seconds: float
    """Wall time spent simulating: not the progress reports between slices, nor the analysis."""
    events_processed: int


class SimulationResults(FiniteModel):
    """Everything a run measured."""

    requests: RequestCounts
    latency: LatencyStats
    throughput: Throughput
    time_to_outcome: TimeToOutcome | None = Field(
        default=None,
        description="Seconds from creation to the end of every request that ended, "
        "completed or not; null only in documents stored before it existed.",
    )
    servers: dict[str, ServerStats]
    edges: dict[str, EdgeStats]
    replica_groups: dict[str, ReplicaGroupStats] = Field(
        default_factory=dict,
        description="Each replica group by the server id it was written with; its replicas "
        "are in `servers` as `<id>-1` .. `<id>-N`. Empty without `replicas`.",
    )
    pools: dict[str, PoolStats] = Field(
        default_factory=dict, description="Connection pools by `server:pool`."
    )
    calls: dict[str, CallStats] = Field(
        default_factory=dict, description="Call steps by `server:endpoint#step`."
    )
    breakdown: list[BreakdownPart] = Field(
        default_factory=list,
        description="Where the mean response time goes, by place and category, in the order "
        "requests meet them: the mean latency split in proportion to the request-seconds "
        "spent at each part. The parts sum to `latency.mean`; empty with no completed "
        "request.",
    )
    time_series: TimeSeries
    meta: RunMeta
    closed: ClosedLoopStats | None = Field(
        default=None, description="The closed-model reading of a closed workload; else null."
    )
    classes: dict[str, ClassStats] | None = Field(
        default=None,
        description="With workload classes: each class's counts, throughput and latency, by "
        "generator id; else null.",
    )
    offered_load: OfferedLoad | None = Field(
        default=None,
        description="The schedule of a rate schedule or of a closed population, per window; "
        "null for users per window.",
    )
    recovery: list[Recovery] | None = Field(
        default=None,
        description="For each transient trigger (an injected event, a dip of a capacity "
        "schedule, a load spike of a rate schedule), whether and when the run recovered; "
        "null for a scenario without one.",
    )
