"""A fluent Python builder for scenarios, the alternative to writing YAML.

The builder only writes the document a YAML file would hold; `build` hands it
to `parse_scenario`, so a built scenario passes exactly the checks a file
does and a mistake raises the same `ScenarioValidationError`, located by the
same paths (`topology_graph.edges[2].target`).

Servers, endpoints and steps are declared in reading order: `endpoint` adds
to the server declared last, and `cpu`, `parse`, `ram`, `io`, `call` and
`cache` add steps to the endpoint declared last (or, inside `cache`, to the
branch being filled).
"""

import copy
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Self

import yaml

from asyncflow_backend.builder.random_variables import Amount, as_document
from asyncflow_backend.config.constants import (
    DEFAULT_CPU_CORES,
    DEFAULT_RAM_MB,
    CacheStepKind,
    CallStepKind,
    CpuStepKind,
    Distribution,
    EventKind,
    EventMetric,
    IoStepKind,
    Jitter,
    LoadBalancerAlgorithm,
    RamStepKind,
    RetryOn,
    SampledMetric,
    ScalingMetric,
    SlowdownScope,
    StepOperation,
    TimeoutAction,
    WhenDown,
    WorkInProgress,
)
from asyncflow_backend.schemas.loading import parse_scenario
from asyncflow_backend.schemas.scenario import Scenario

CpuKind = CpuStepKind | Literal["initial_parsing", "cpu_bound_operation"]
IoKind = IoStepKind | Literal["io_task_spawn", "io_llm", "io_wait", "io_db", "io_cache"]
Algorithm = (
    LoadBalancerAlgorithm
    | Literal[
        "round_robin", "least_connection", "random", "weighted_round_robin", "power_of_two_choices"
    ]
)


TimeoutChoice = TimeoutAction | Literal["keep_working", "cancel"]
WorkChoice = WorkInProgress | Literal["resume", "lose"]
DownChoice = WhenDown | Literal["wait", "reject"]
MetricChoice = ScalingMetric | Literal["cpu_utilisation", "in_flight_requests"]
RetryOnChoice = RetryOn | Literal["timed_out", "rejected", "dropped", "failed"]
JitterChoice = Jitter | Literal["full", "equal", "none"]
ScopeChoice = SlowdownScope | Literal["cpu", "io", "both"]


def retry_policy(
    max_attempts: int,
    *,
    retry_on: Iterable[RetryOnChoice] | None = None,
    base_s: float | None = None,
    cap_s: float | None = None,
    jitter: JitterChoice | None = None,
    budget_ratio: float | None = None,
    budget_tokens: int | None = None,
) -> dict[str, Any]:
    """The document of a retry policy (`retry:` of the workload or of a call step): at most
    `max_attempts` attempts, retrying the ends in `retry_on` (all four when omitted) after
    a backoff of `base_s` doubling up to `cap_s` with `jitter`, within a retry budget of
    `budget_ratio` tokens per first attempt and at most `budget_tokens` tokens if given."""
    policy: dict[str, Any] = {"max_attempts": max_attempts}
    if retry_on is not None:
        policy["retry_on"] = [str(outcome) for outcome in retry_on]
    backoff = {
        key: value
        for key, value in (("base_s", base_s), ("cap_s", cap_s), ("jitter", jitter))
        if value is not None
    }
    if backoff:
        policy["backoff"] = {key: str(v) if key == "jitter" else v for key, v in backoff.items()}
    if budget_ratio is not None:
        policy["budget"] = {"ratio": budget_ratio}
        if budget_tokens is not None:
            policy["budget"]["max_tokens"] = budget_tokens
    elif budget_tokens is not None:
        raise BuilderUsageError("budget_tokens goes with budget_ratio")
    return policy


class BuilderUsageError(RuntimeError):
    """A builder method was called before what it adds to exists (a step before any endpoint)."""


class ScenarioBuilder:
    """Collects a scenario piece by piece; `build()` validates it into a `Scenario`.

    Numbers are fixed values; pass `exponential(...)`, `normal(...)` and the other
    helpers of `asyncflow_backend.builder` for random ones. The exception is the
    user count, where a number is a Poisson mean as in the scenario language.
    Every method returns the builder, so calls chain.
    """

    def __init__(self) -> None:
        self._generators: list[dict[str, Any]] = []
        self._client: dict[str, Any] | None = None
        self._load_balancers: list[dict[str, Any]] = []
        self._servers: list[dict[str, Any]] = []
        self._edges: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._settings: dict[str, Any] = {}
        self._seed: int | None = None
        self._branches: list[list[dict[str, Any]]] = []
        """The cache branches being filled, innermost last: steps go to the last one."""

    # The workload and the nodes.

    def generator(
        self, generator_id: str, *, users: Amount, rpm: float, window: int | None = None
    ) -> Self:
        """The request generator: `users` active users each sending `rpm` requests a minute.

        `users` is re-drawn every `window` seconds (60 when omitted); a number
        means a Poisson draw with that mean, `deterministic(n)` exactly n users.
        """
        users_document = {"mean": users} if isinstance(users, int | float) else as_document(users)
        generator: dict[str, Any] = {
            "id": generator_id,
            "avg_active_users": users_document,
            "avg_request_per_minute_per_user": {"mean": rpm},
        }
        if window is not None:
            generator["user_sampling_window"] = window
        return self._workload(generator)

    def arrival_rate(
        self,
        generator_id: str,
        shape: Literal["steps", "ramp", "trace"],
        points: Iterable[tuple[float, float]],
        *,
        interpolation: Literal["linear", "steps"] | None = None,
    ) -> Self:
        """An open generator whose arrival rate follows a schedule of (seconds, requests/s)
        `points`: held between them (`steps`), straight lines (`ramp`), or a recorded
        `trace` (lines unless `interpolation="steps"`)."""
        schedule: dict[str, Any] = {
            "shape": shape,
            "points": [{"at_s": at_s, "rate_per_s": rate} for at_s, rate in points],
        }
        if interpolation is not None:
            schedule["interpolation"] = interpolation
        return self._workload({"id": generator_id, "arrival_rate": schedule})

    def daily_rate(
        self,
        generator_id: str,
        *,
        peak: float,
        trough: float = 0.0,
        period_s: float | None = None,
        peak_at_s: float | None = None,
    ) -> Self:
        """An open generator whose arrival rate is a sine between `trough` and `peak`
        requests/s, of period `period_s` (a day when omitted), peaking at `peak_at_s`
        (half the period when omitted)."""
        schedule: dict[str, Any] = {
            "shape": "daily",
            "peak_rate_per_s": peak,
            "trough_rate_per_s": trough,
        }
        if period_s is not None:
            schedule["period_s"] = period_s
        if peak_at_s is not None:
            schedule["peak_at_s"] = peak_at_s
        return self._workload({"id": generator_id, "arrival_rate": schedule})

    def closed_users(
        self, generator_id: str, users: int | Iterable[tuple[float, int]], *, think_time: Amount
    ) -> Self:
        """A closed workload: `users` users (or (seconds, users) points of a schedule), each
        thinking for a draw of `think_time` seconds between the end of one request and the
        next."""
        population: Any = (
            users
            if isinstance(users, int)
            else {"points": [{"at_s": at_s, "users": count} for at_s, count in users]}
        )
        return self._workload(
            {
                "id": generator_id,
                "users": population,
                "think_time": as_document(think_time)
                if not isinstance(think_time, int | float)
                else {"mean": think_time, "distribution": "deterministic"},
            }
        )

    def _workload(self, generator: dict[str, Any]) -> Self:
        # The first generator is `rqs_input`, later ones are workload classes; declaring
        # one again by its id replaces it.
        ids = [g["id"] for g in self._generators]
        if generator["id"] in ids:
            self._generators[ids.index(generator["id"])] = generator
        else:
            self._generators.append(generator)
        return self

    def endpoint_mix(self, server_id: str, weights: dict[str, float]) -> Self:
        """The endpoints of `server_id` the workload declared last picks, with `weights` by
        endpoint name (with workload classes only)."""
        if not self._generators:
            raise BuilderUsageError("endpoint_mix() needs a workload first (generator(...))")
        self._generators[-1].setdefault("endpoint_mix", {})[server_id] = dict(weights)
        return self

    def timeout(self, seconds: Amount, *, on_timeout: TimeoutChoice | None = None) -> Self:
        """The client's timeout on every request of the generator: `seconds` (a number or a
        random variable, such as `exponential(0.5)` for impatient users); `on_timeout` is
        `keep_working` (the default) or `cancel`. Call it after the first workload
        (`generator(...)`, `arrival_rate(...)`...): it goes on `rqs_input`."""
        if not self._generators:
            raise BuilderUsageError("timeout(...) needs a generator(...) declared before it")
        self._generators[0]["timeout_s"] = as_document(seconds)
        if on_timeout is not None:
            self._generators[0]["on_timeout"] = str(on_timeout)
        return self

    def retry(self, max_attempts: int, **options: Any) -> Self:
        """The client's retry policy: see `retry_policy` for `options`. Call it after the
        first workload (`generator(...)`, `arrival_rate(...)`...): it goes on `rqs_input`
        and applies to the requests of every class."""
        if not self._generators:
            raise BuilderUsageError("retry(...) needs a generator(...) declared before it")
        self._generators[0]["retry"] = retry_policy(max_attempts, **options)
        return self

    def client(self, client_id: str) -> Self:
        """The client, where requests start and must come back to complete."""
        self._client = {"id": client_id}
        return self

    def load_balancer(
        self,
        lb_id: str,
        *,
        covers: Iterable[str],
        algorithm: Algorithm = "round_robin",
        weights: dict[str, float] | None = None,
        when_none_up: DownChoice | None = None,
        rate_per_s: float | None = None,
        burst: int | None = None,
    ) -> Self:
        """A load balancer spreading requests over the servers it `covers`.

        `weights` (server id: relative share) goes with `weighted_round_robin`. Call it
        again for more tiers (an edge balancer, one in front of database replicas that
        call steps name): one balancer is written `load_balancer`, several
        `load_balancers`.
        `when_none_up` says what becomes of a request while every server it covers is
        down: `wait` (the default) or `reject`.
        `rate_per_s` and `burst` make a token-bucket `rate_limit` (both or neither).
        """
        balancer: dict[str, Any] = {
            "id": lb_id,
            "algorithms": str(algorithm),
            "server_covered": list(covers),
        }
        if weights is not None:
            balancer["weights"] = dict(weights)
        if when_none_up is not None:
            balancer["when_none_up"] = str(when_none_up)
        if (rate_per_s is None) != (burst is None):
            raise BuilderUsageError("a rate limit needs both rate_per_s and burst")
        if rate_per_s is not None:
            balancer["rate_limit"] = {"rate_per_s": rate_per_s, "burst": burst}
        self._load_balancers.append(balancer)
        return self

    def server(
        self,
        server_id: str,
        *,
        cores: int = DEFAULT_CPU_CORES,
        ram_mb: int = DEFAULT_RAM_MB,
        db_pool: int | None = None,
        pools: dict[str, int] | None = None,
        cores_at: dict[float, int] | None = None,
        max_ready_queue: int | None = None,
        max_concurrency: int | None = None,
        when_down: DownChoice | None = None,
        replicas: int | None = None,
    ) -> Self:
        """A server; the endpoints declared next belong to it.

        `db_pool` is `db_connection_pool` (every `io_db` step holds one of its
        connections); `pools` are named pools that `io(..., pool=NAME)` steps hold.
        `cores_at` is its `capacity_schedule`, as {seconds: cores from then on}.
        `max_ready_queue` and `max_concurrency` are its `admission` caps: an arrival
        that would exceed one is rejected at once. `when_down` says what becomes of a
        request that reaches it while it is down: `wait` (the default) or `reject`.
        `replicas` makes it a replica group: that many identical servers,
        `<server_id>-1` .. `<server_id>-N`, reached through a balancer that covers
        `server_id` (edges to and from `server_id` are copied for each).
        """
        resources: dict[str, Any] = {"cpu_cores": cores, "ram_mb": ram_mb}
        if db_pool is not None:
            resources["db_connection_pool"] = db_pool
        if pools:
            resources["connection_pools"] = dict(pools)
        server: dict[str, Any] = {"id": server_id, "server_resources": resources, "endpoints": []}
        if cores_at:
            server["capacity_schedule"] = [
                {"at_s": at, "cpu_cores": n} for at, n in sorted(cores_at.items())
            ]
        admission = {
            name: value
            for name, value in (
                ("max_ready_queue", max_ready_queue),
                ("max_concurrency", max_concurrency),
            )
            if value is not None
        }
        if admission:
            server["admission"] = admission
        if when_down is not None:
            server["when_down"] = str(when_down)
        if replicas is not None:
            server["replicas"] = replicas
        self._servers.append(server)
        return self

    def failures(
        self,
        time_to_failure: Amount,
        time_to_repair: Amount,
        *,
        work_in_progress: WorkChoice = "resume",
    ) -> Self:
        """Random failures and repairs of the last server: up for a draw of
        `time_to_failure` seconds, down for a draw of `time_to_repair`, and so on.
        `work_in_progress` is `resume` (the requests on it wait for the repair) or `lose`
        (they fail). A plain number is a deterministic time."""
        if not self._servers:
            raise BuilderUsageError("failures(...) needs a server(...) declared before it")

        def variable(value: Amount) -> Any:
            if isinstance(value, int | float):
                return {"mean": value, "distribution": Distribution.DETERMINISTIC.value}
            return as_document(value)

        self._servers[-1]["failures"] = {
            "time_to_failure": variable(time_to_failure),
            "time_to_repair": variable(time_to_repair),
            "work_in_progress": str(work_in_progress),
        }
        return self

    def autoscaler(
        self,
        metric: MetricChoice,
        target: float,
        *,
        max_replicas: int,
        min_replicas: int = 1,
        sync_period_s: float = 15.0,
        tolerance: float = 0.1,
        startup_delay_s: float = 0.0,
        scale_up: dict[str, Any] | None = None,
        scale_down: dict[str, Any] | None = None,
    ) -> Self:
        """A horizontal autoscaler on the last server, which needs `replicas` (the count at
        the start): Kubernetes' HPA on `cpu_utilisation` or `in_flight_requests` per
        replica. `scale_up` and `scale_down` are `behavior` rules as written in a scenario
        (`stabilisation_window_s`, `select_policy`, `policies`); left out, Kubernetes'
        defaults apply."""
        if not self._servers:
            raise BuilderUsageError("autoscaler(...) needs a server(...) declared before it")
        behavior = {
            name: copy.deepcopy(rules)
            for name, rules in (("scale_up", scale_up), ("scale_down", scale_down))
            if rules is not None
        }
        self._servers[-1]["autoscaler"] = {
            "metric": str(metric),
            "target": target,
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "sync_period_s": sync_period_s,
            "tolerance": tolerance,
            "startup_delay_s": startup_delay_s,
            "behavior": behavior,
        }
        return self

    def event_loop(self, *, per_wakeup_s: float = 0.0, per_callback_s: float = 0.0) -> Self:
        """The CPU the last server's event loops spend besides the steps: `per_wakeup_s`
        on every CPU burst that finds its core idle (it wakes the loop) and `per_callback_s`
        on every CPU burst that takes a core."""
        if not self._servers:
            raise BuilderUsageError("event_loop(...) needs a server(...) declared before it")
        self._servers[-1]["event_loop"] = {
            "per_wakeup_s": per_wakeup_s,
            "per_callback_s": per_callback_s,
        }
        return self

    def endpoint(self, name: str, *, probability: float | None = None) -> Self:
        """An endpoint of the last server; the steps declared next run in it, in order.

        `probability` weighs how often requests pick this endpoint among the
        server's endpoints (equal shares when no endpoint has one).
        """
        if not self._servers:
            raise BuilderUsageError(f"endpoint('{name}') needs a server(...) declared before it")
        endpoint: dict[str, Any] = {"endpoint_name": name, "steps": []}
        if probability is not None:
            endpoint["probability"] = probability
        self._servers[-1]["endpoints"].append(endpoint)
        return self

    # Steps of the last endpoint.

    def cpu(self, cpu_time: Amount, *, kind: CpuKind = "cpu_bound_operation") -> Self:
        """A CPU step: holds a core for `cpu_time` seconds."""
        return self._step(str(kind), StepOperation.CPU_TIME, cpu_time)

    def parse(self, cpu_time: Amount) -> Self:
        """A CPU step of kind `initial_parsing`, the usual first step of an endpoint."""
        return self.cpu(cpu_time, kind=CpuStepKind.INITIAL_PARSING)

    def ram(self, megabytes: float) -> Self:
        """A RAM step: the request holds `megabytes` on the server until it leaves."""
        return self._step(RamStepKind.RAM.value, StepOperation.NECESSARY_RAM, megabytes)

    def io(self, kind: IoKind, waiting_time: Amount, *, pool: str | None = None) -> Self:
        """An I/O step of `kind` (io_db, io_cache, ...): waits without holding a core,
        holding a connection of the server's pool `pool` if given."""
        return self._step(str(kind), StepOperation.IO_WAITING_TIME, waiting_time, pool=pool)

    def call(
        self,
        *targets: str,
        wait_for: int | None = None,
        pool: str | None = None,
        timeout_s: Amount | None = None,
        on_timeout: TimeoutChoice | None = None,
        retry: dict[str, Any] | None = None,
        circuit_breaker: dict[str, Any] | None = None,
    ) -> Self:
        """A call step: sub-requests to `targets` (servers or the balancer), sent together.

        The request waits for `wait_for` answers (all when omitted), holding a connection
        of its server's pool `pool` if given, for at most `timeout_s` seconds when given
        (then the call fails; `on_timeout: cancel` withdraws the sub-requests still out),
        retrying lost sub-requests by `retry` (a `retry_policy(...)`) if given, behind a
        `circuit_breaker` (its fields, named as resilience4j names them) if given. Each call
        needs the edge to its target and an edge back from each server that may answer.
        """
        if not targets:
            raise BuilderUsageError("call(...) needs at least one target")
        step: dict[str, Any] = {"kind": CallStepKind.CALL.value}
        if len(targets) == 1:
            step["target"] = targets[0]
        else:
            step["targets"] = list(targets)
        if wait_for is not None:
            step["wait_for"] = wait_for
        if pool is not None:
            step["pool"] = pool
        if timeout_s is not None:
            step["timeout_s"] = as_document(timeout_s)
        if on_timeout is not None:
            step["on_timeout"] = str(on_timeout)
        if retry is not None:
            step["retry"] = retry
        if circuit_breaker is not None:
            step["circuit_breaker"] = dict(circuit_breaker)
        return self._append(step)

    def cache(
        self,
        hit_ratio: float,
        *,
        hit: Callable[[Self], object] | None = None,
        miss: Callable[[Self], object] | None = None,
        outcome_per: Literal["request", "attempt"] | None = None,
    ) -> Self:
        """A cache step: a lookup that hits with probability `hit_ratio` and runs the steps
        `hit` adds, or misses and runs the steps `miss` adds (each is called with the
        builder, whose step methods then add to that branch):

            .cache(0.8, hit=lambda b: b.io("io_cache", 0.0005),
                   miss=lambda b: b.call("db", pool="db").io("io_cache", 0.0005))

        `outcome_per` is `request` (the default: retries keep the outcome until the miss
        steps have written the key back) or `attempt` (each attempt draws afresh).
        """
        step: dict[str, Any] = {"kind": CacheStepKind.CACHE.value, "hit_ratio": hit_ratio}
        if outcome_per is not None:
            step["outcome_per"] = outcome_per
        self._append(step)
        for branch, fill in (("hit", hit), ("miss", miss)):
            if fill is None:
                continue
            steps: list[dict[str, Any]] = []
            self._branches.append(steps)
            try:
                fill(self)
            finally:
                self._branches.pop()
            if steps:
                step[branch] = steps
        return self

    def _append(self, step: dict[str, Any]) -> Self:
        if not self._servers or not self._servers[-1]["endpoints"]:
            raise BuilderUsageError(
                f"a '{step['kind']}' step needs a server(...) and an endpoint(...) declared "
                "before it"
            )
        if self._branches:
            self._branches[-1].append(step)
        else:
            self._servers[-1]["endpoints"][-1]["steps"].append(step)
        return self

    def _step(
        self, kind: str, operation: StepOperation, amount: Amount, *, pool: str | None = None
    ) -> Self:
        step: dict[str, Any] = {
            "kind": kind,
            "step_operation": {operation.value: as_document(amount)},
        }
        if pool is not None:
            step["pool"] = pool
        return self._append(step)

    # Edges.

    def edge(
        self,
        source: str,
        target: str,
        *,
        latency: Amount,
        dropout: float | None = None,
        edge_id: str | None = None,
    ) -> Self:
        """A network link from `source` to `target`, named `source-target` unless `edge_id`.

        A number as `latency` is a fixed delay; `exponential(mean)` is the usual
        choice. `dropout` defaults to the language's 0.01 when omitted.
        """
        latency_document = (
            {"mean": latency, "distribution": Distribution.DETERMINISTIC.value}
            if isinstance(latency, int | float)
            else as_document(latency)
        )
        edge: dict[str, Any] = {
            "id": edge_id or f"{source}-{target}",
            "source": source,
            "target": target,
            "latency": latency_document,
        }
        if dropout is not None:
            edge["dropout_rate"] = dropout
        self._edges.append(edge)
        return self

    def chain(self, *node_ids: str, latency: Amount, dropout: float | None = None) -> Self:
        """Edges along a path: `chain("gen", "client", "srv-1", "client", ...)`."""
        for source, target in itertools.pairwise(node_ids):
            self.edge(source, target, latency=latency, dropout=dropout)
        return self

    # Injected events.

    def spike(
        self,
        edge_id: str,
        *,
        start: float,
        end: float,
        extra_s: float,
        event_id: str | None = None,
    ) -> Self:
        """Adds `extra_s` seconds to every traversal of `edge_id` dispatched in [start, end)."""
        return self._event(
            event_id or f"spike-{len(self._events) + 1}",
            edge_id,
            {"kind": EventKind.NETWORK_SPIKE_START.value, "t_start": start, "spike_s": extra_s},
            {"kind": EventKind.NETWORK_SPIKE_END.value, "t_end": end},
        )

    def outage(
        self, server_id: str, *, start: float, end: float, event_id: str | None = None
    ) -> Self:
        """Takes `server_id` out of the load balancer's rotation during [start, end)."""
        return self._event(
            event_id or f"outage-{len(self._events) + 1}",
            server_id,
            {"kind": EventKind.SERVER_DOWN.value, "t_start": start},
            {"kind": EventKind.SERVER_UP.value, "t_end": end},
        )

    def slowdown(
        self,
        server_id: str,
        *,
        start: float,
        end: float,
        factor: float,
        applies_to: ScopeChoice | None = None,
        event_id: str | None = None,
    ) -> Self:
        """Multiplies the step times of `server_id` drawn in [start, end) by `factor`: its CPU
        steps, its I/O steps or both (`applies_to`, both when omitted)."""
        opening: dict[str, Any] = {
            "kind": EventKind.SERVER_SLOWDOWN_START.value,
            "t_start": start,
            "factor": factor,
        }
        if applies_to is not None:
            opening["applies_to"] = str(applies_to)
        return self._event(
            event_id or f"slowdown-{len(self._events) + 1}",
            server_id,
            opening,
            {"kind": EventKind.SERVER_SLOWDOWN_END.value, "t_end": end},
        )

    def edge_slowdown(
        self,
        edge_id: str,
        *,
        start: float,
        end: float,
        factor: float,
        event_id: str | None = None,
    ) -> Self:
        """Multiplies the latency of every traversal of `edge_id` dispatched in [start, end)
        by `factor`."""
        return self._event(
            event_id or f"edge-slowdown-{len(self._events) + 1}",
            edge_id,
            {"kind": EventKind.EDGE_SLOWDOWN_START.value, "t_start": start, "factor": factor},
            {"kind": EventKind.EDGE_SLOWDOWN_END.value, "t_end": end},
        )

    def _event(
        self, event_id: str, target_id: str, start: dict[str, Any], end: dict[str, Any]
    ) -> Self:
        self._events.append(
            {"event_id": event_id, "target_id": target_id, "start": start, "end": end}
        )
        return self

    # Settings.

    def settings(
        self,
        *,
        horizon: float | None = None,
        sample_period: float | None = None,
        sample_metrics: Iterable[SampledMetric | str] | None = None,
        event_metrics: Iterable[EventMetric | str] | None = None,
        recovery: Mapping[str, float] | None = None,
    ) -> Self:
        """Simulated seconds, sampling period, metrics and how recovery is judged
        (`recovery`: `window_s`, `tolerance`, `baseline_s`); what is omitted keeps its
        default."""
        given = {
            "total_simulation_time": horizon,
            "sample_period_s": sample_period,
            "enabled_sample_metrics": None
            if sample_metrics is None
            else [str(m) for m in sample_metrics],
            "enabled_event_metrics": None
            if event_metrics is None
            else [str(m) for m in event_metrics],
            "recovery": None if recovery is None else dict(recovery),
        }
        self._settings.update({key: value for key, value in given.items() if value is not None})
        return self

    def seed(self, seed: int) -> Self:
        """The seed: the same scenario and seed give the same results."""
        self._seed = seed
        return self

    # Output.

    def to_dict(self) -> dict[str, Any]:
        """The scenario document built so far, as a YAML or JSON file would hold it."""
        document: dict[str, Any] = {}
        if self._generators:
            document["rqs_input"] = self._generators[0]
            if len(self._generators) > 1:
                document["workload_classes"] = self._generators[1:]
        nodes: dict[str, Any] = {}
        if self._client is not None:
            nodes["client"] = self._client
        if len(self._load_balancers) == 1:
            nodes["load_balancer"] = self._load_balancers[0]
        elif self._load_balancers:
            nodes["load_balancers"] = self._load_balancers
        nodes["servers"] = self._servers
        document["topology_graph"] = {"nodes": nodes, "edges": self._edges}
        if self._settings:
            document["sim_settings"] = self._settings
        if self._events:
            document["events"] = self._events
        if self._seed is not None:
            document["seed"] = self._seed
        return copy.deepcopy(document)

    def to_yaml(self) -> str:
        """The scenario document as YAML, ready to save and run with `asyncflow run`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def build(self) -> Scenario:
        """The validated scenario; raises `ScenarioValidationError` listing every problem."""
        return parse_scenario(self.to_dict())
