"""Warnings: inputs that are legal, run as written, and are almost never what was meant.

A warning has the shape of a problem (a path and a message) but refuses
nothing: the command line prints it and runs, the API returns it next to a
202 or a valid report. `find_warnings` expects a scenario that passed
validation, so ids, routes and references are sound.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from asyncflow_backend.config.constants import (
    DEFAULT_DROPOUT_RATE,
    DEFAULT_USER_SAMPLING_WINDOW_S,
    LoadBalancerAlgorithm,
    SlowdownScope,
    WhenDown,
    WorkInProgress,
)
from asyncflow_backend.schemas.arrival_rate import PiecewiseRate, TraceRate
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.calls import answering_servers, call_edges, call_sites
from asyncflow_backend.schemas.clipping import clipped_variables
from asyncflow_backend.schemas.closed_users import UserSchedule
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.steps import (
    CacheStep,
    CallStep,
    CpuStep,
    IoStep,
    OperationStep,
    Step,
    TimedStep,
    walk_steps,
)
from asyncflow_backend.schemas.topology import DB_POOL, LoadBalancer, Server
from asyncflow_backend.schemas.validation import Loc, Problem
from asyncflow_backend.schemas.workload import RqsGenerator, WorkloadModel

SERVERS: Loc = ("topology_graph", "nodes", "servers")

CallsIn = dict[str, dict[tuple[str, str | None], float]]
"""For each server, the mean calls per second it receives by (caller, gate): the gate is the
caller's pool whose connection the call holds while it waits, or that an earlier call to the
same node on the request's path held, or None."""


def find_warnings(scenario: Scenario) -> list[Problem]:
    """Every warning for a valid scenario, in document order of the fields they name."""
    warnings = list(_implicit_distributions(scenario))
    warnings += clipped_variables(scenario)
    warnings += _default_dropout(scenario)
    for loc, workload in _generator_locs(scenario):
        warnings += _schedule_span(scenario, loc, workload)
    if any(w.model is not WorkloadModel.CLOSED for w in scenario.generators):
        # A closed population cannot outgrow a server: its queue holds at most N users.
        warnings += _overloaded_servers(scenario)
    warnings += _capacity_schedules(scenario)
    warnings += _slowdowns(scenario)
    warnings += _idle_cores(scenario)
    warnings += _idle_balancers(scenario)
    warnings += _outages_without_effect(scenario)
    warnings += _overloaded_by_failures(scenario)
    warnings += _retries_on_timeouts_never_fire(scenario)
    return warnings


def _overloaded_by_failures(scenario: Scenario) -> Iterator[Problem]:
    """A server with failures that no balancer covers does its CPU work only while up: it
    has cores x availability core-seconds per second in the long run, and the requests that
    wait for its repairs pile up when the work offered exceeds that (the M/M/1 with
    breakdowns is stable only for lambda < mu A). Servers already over their cores are
    warned about by `_overloaded_servers`; a balancer sends work elsewhere while one is
    down."""
    lb = scenario.topology_graph.nodes.load_balancer
    covered = set(lb.server_covered) if lb is not None else set()
    arrivals, _ = _arrival_rates(scenario)
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        failures = server.failures
        if failures is None or server.id in covered or server.admission is not None:
            continue
        if server.when_down is WhenDown.REJECT and failures.work_in_progress is (
            WorkInProgress.LOSE
        ):
            continue  # nothing waits for a repair
        cores = server.server_resources.cpu_cores * server.copies
        work = arrivals.get(server.id, 0.0) * _cpu_seconds(server)
        usable = cores * failures.availability
        if usable < work <= cores:
            yield Problem(
                (*SERVERS, i, "failures"),
                f"server '{server.id}' is up {failures.availability:.1%} of the time, so its "
                f"{cores} core(s) give {usable:.3g} core-seconds per second in the long run, "
                f"less than the {work:.3g} offered: its backlog grows without bound",
            )


def _outages_without_effect(scenario: Scenario) -> Iterator[Problem]:
    """An outage of a server no balancer covers changes nothing, as in AsyncFlow, unless
    the server says what becomes of the requests that reach it (`when_down`)."""
    covered = {s for _, lb in scenario.topology_graph.nodes.balancers() for s in lb.server_covered}
    servers = {server.id: server for server in scenario.topology_graph.nodes.servers}
    for i, event in enumerate(scenario.events or ()):
        server = servers.get(event.target_id)
        if (
            event.is_outage
            and server is not None
            and server.id not in covered
            and server.when_down is None
        ):
            yield Problem(
                ("events", i, "target_id"),
                f"outage '{event.event_id}': no balancer covers server '{server.id}', so the "
                "outage changes nothing (as in AsyncFlow); set the server's when_down to "
                "'wait' or 'reject' to stop the requests that reach it",
            )


def _retries_on_timeouts_never_fire(scenario: Scenario) -> Iterator[Problem]:
    """A client that retries timeouts but has no timeout: `timed_out` in its `retry_on`
    never happens, which is probably not meant."""
    workload = scenario.rqs_input
    retry = workload.retry
    if retry is not None and workload.timeout_s is None and "timed_out" in retry.retry_on:
        yield Problem(
            ("rqs_input", "retry", "retry_on"),
            "the client retries timed_out attempts but has no timeout_s: no attempt ever "
            "times out, so only the other ends in retry_on are retried",
        )


def _capacity_schedules(scenario: Scenario) -> Iterator[Problem]:
    """Changes at or past the horizon never happen; a stretch with fewer cores than the
    CPU work offered to the server (as in `_overloaded_servers`) lets a queue grow: its
    ready queue, or the waiters of the callers' pools that cap its requests
    (`Gates.backlog`)."""
    horizon = scenario.sim_settings.total_simulation_time
    arrivals, from_calls = _arrival_rates(scenario)
    gates = Gates.of(scenario, arrivals, from_calls)
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        work = arrivals.get(server.id, 0.0) * _cpu_seconds(server)
        for j, change in enumerate(server.capacity_schedule):
            loc = (*SERVERS, i, "capacity_schedule", j)
            if change.at_s >= horizon:
                yield Problem(
                    (*loc, "at_s"),
                    f"server '{server.id}': this change comes at {readable(change.at_s)} s, "
                    f"not before the end of the run ({readable(horizon)} s), so it never "
                    "happens",
                )
            elif 0 < change.cpu_cores * server.copies < work and server.admission is None:
                backlog = gates.backlog(server, change.cpu_cores * server.copies)
                yield Problem(
                    (*loc, "cpu_cores"),
                    f"server '{server.id}' is offered {work:.3g} core-seconds of CPU work per "
                    f"second; with {_cores(change.cpu_cores, server)} from "
                    f"{readable(change.at_s)} s {backlog.grows} for as long as the change "
                    f"lasts{backlog.bound}",
                )


@dataclass(frozen=True)
class Backlog:
    """Where the requests an overloaded server cannot serve pile up, in words."""

    grows: str
    """The queues that grow, as a clause: `its ready queue grows`, `the requests waiting
    for a connection of pool 'db' of server 'api' grow`, or both."""
    bound: str = ""
    """Why the server's own queue stays bounded when the backlog is elsewhere, else empty."""


@dataclass(frozen=True)
class Gates:
    """Which pools cap the requests reaching each server, for `Gates.backlog`.

    A call that holds a connection of its caller's pool while it waits brings at most one
    request per connection to the server, however long the server takes, and a request
    reaches a later call to the same node only as fast as it got through that pool (the
    gate of a call, `CallsIn`). The calls of a server whose own requests all come through
    gates are capped too, by those gates. The other requests (routed to the server, or
    called with no gate) are an open stream.
    """

    open_rates: dict[str, float]
    """Requests per second reaching each server that no gate caps."""
    gates: dict[str, set[tuple[str, str]]]
    """For each server, the pools (caller, pool) whose waiters hold its capped requests back."""

    @classmethod
    def of(cls, scenario: Scenario, arrivals: dict[str, float], calls_in: CallsIn) -> "Gates":
        """Walks the servers callers first (the call graph is acyclic once valid), so each
        caller is settled before the servers it calls; a remainder of rounding (the same
        rates summed in another order) counts as no open stream."""
        open_rates: dict[str, float] = {}
        gates: dict[str, set[tuple[str, str]]] = {}
        for server_id in _callers_first(scenario):
            arriving = arrivals.get(server_id, 0.0)
            capped = 0.0
            found: set[tuple[str, str]] = set()
            for (caller, gate), rate in calls_in.get(server_id, {}).items():
                if arrivals.get(caller, 0.0) > 0 and open_rates.get(caller) == 0:
                    found |= gates[caller]  # the caller's requests are bounded: its gates
                    capped += rate
                elif gate is not None:
                    found.add((caller, gate))
                    capped += rate
            remainder = arriving - capped
            open_rates[server_id] = remainder if remainder > 1e-9 * arriving else 0.0
            gates[server_id] = found
        return cls(open_rates, gates)

    def backlog(self, server: Server, cores: float) -> Backlog:
        """Where the backlog of `server`, offered more CPU work than its `cores` (or the
        cores' worth a slowdown leaves), grows.

        The requests beyond what the server serves wait at its gates. If the open stream's
        own CPU work is at least `cores`, the ready queue grows without bound as well; if
        less, it stays bounded: with N gated requests always present, an open stream of
        rate a on a server serving m requests per second keeps about N a / (m - a) of its
        own in the FIFO queue (a mean-value approximation: each class is served in
        proportion to its share of the queue; with N = 8 and a = 0.96 m it gives 192,
        against about 160 measured).
        """
        gates = sorted(self.gates.get(server.id, ()))
        if not gates:
            return Backlog("its ready queue grows")
        named = ", ".join(f"pool '{pool}' of server '{caller}'" for caller, pool in gates)
        waiting = f"the requests waiting for a connection of {named}"
        if self.open_rates.get(server.id, 0.0) * _cpu_seconds(server) >= cores:
            return Backlog(f"its ready queue and {waiting} grow")
        return Backlog(
            f"{waiting} grow",
            "; its ready queue stays bounded, since those connections cap the requests "
            "that reach it",
        )


def _slowdowns(scenario: Scenario) -> Iterator[Problem]:
    """A server slowdown of step times the server has none of changes nothing; one that
    multiplies the CPU work offered to a server (as in `_overloaded_servers`) past its
    cores, when it was within them, lets a queue grow for as long as it lasts: its ready
    queue, or the waiters of the callers' pools that cap its requests (`Gates.backlog`,
    with the cores a slowdown by k leaves, cores / k)."""
    arrivals, from_calls = _arrival_rates(scenario)
    gates = Gates.of(scenario, arrivals, from_calls)
    servers = {server.id: server for server in scenario.topology_graph.nodes.servers}
    for i, event in enumerate(scenario.events or ()):
        scope = event.scope
        server = servers.get(event.target_id)
        if scope is None or server is None:
            continue
        cpu = scope is not SlowdownScope.IO and any(
            isinstance(step, CpuStep) for _, step, _ in _step_visits(server)
        )
        io = scope is not SlowdownScope.CPU and any(
            isinstance(step, IoStep) for _, step, _ in _step_visits(server)
        )
        if not (cpu or io):
            steps = {SlowdownScope.CPU: "CPU", SlowdownScope.IO: "I/O"}.get(scope, "CPU or I/O")
            yield Problem(
                ("events", i, "start", "applies_to"),
                f"slowdown '{event.event_id}': server '{server.id}' has no {steps} steps, so "
                "the slowdown changes nothing",
            )
            continue
        factor = event.start.factor or 1.0
        work = arrivals.get(server.id, 0.0) * _cpu_seconds(server)
        cores = server.server_resources.cpu_cores
        if cpu and work <= cores < work * factor and server.admission is None:
            backlog = gates.backlog(server, cores / factor)
            yield Problem(
                ("events", i, "start", "factor"),
                f"slowdown '{event.event_id}' makes the {work:.3g} core-seconds of CPU work "
                f"offered per second to server '{server.id}' {work * factor:.3g}, more than "
                f"its {cores} core(s): {backlog.grows} for as long as the slowdown lasts "
                f"({readable(event.end.t_end - event.start.t_start)} s){backlog.bound}",
            )


def _generator_locs(scenario: Scenario) -> list[tuple[Loc, RqsGenerator]]:
    located: list[tuple[Loc, RqsGenerator]] = [(("rqs_input",), scenario.rqs_input)]
    located += [(("workload_classes", i), w) for i, w in enumerate(scenario.workload_classes or ())]
    return located


def _schedule_span(scenario: Scenario, at: Loc, workload: RqsGenerator) -> Iterator[Problem]:
    """Schedule points past the horizon are never reached; a trace that ends before it
    holds its last rate to the end, which a recording rarely means."""
    horizon = scenario.sim_settings.total_simulation_time
    schedules: list[tuple[Loc, list[float]]] = []
    if isinstance(workload.arrival_rate, PiecewiseRate):
        times = [p.at_s for p in workload.arrival_rate.points]
        schedules.append(((*at, "arrival_rate", "points"), times))
    if isinstance(workload.users, UserSchedule):
        times = [p.at_s for p in workload.users.points]
        schedules.append(((*at, "users", "points"), times))
    for loc, times in schedules:
        late = sum(t >= horizon for t in times)
        if late:
            yield Problem(
                loc,
                f"{late} point(s) at or after the horizon ({readable(horizon)} s) are never "
                "reached; lengthen sim_settings.total_simulation_time or drop them",
            )
    if (
        workload.model is not WorkloadModel.USERS_PER_WINDOW
        and workload.user_sampling_window != DEFAULT_USER_SAMPLING_WINDOW_S
    ):
        yield Problem(
            (*at, "user_sampling_window"),
            "applies to `avg_active_users` only and is ignored here: this workload draws "
            "no number of users",
        )
    rate = workload.arrival_rate
    if isinstance(rate, TraceRate) and rate.points[-1].at_s < horizon * TRACE_SHORT_FRACTION:
        yield Problem(
            (*at, "arrival_rate", "points"),
            f"the trace ends at {readable(rate.points[-1].at_s)} s, well before the horizon "
            f"({readable(horizon)} s): its last rate, {readable(rate.points[-1].rate_per_s)}/s, "
            "holds to the end",
        )


TRACE_SHORT_FRACTION = 0.9
"""A trace whose last point comes before this share of the horizon is warned about."""


def mean_arrival_rate(scenario: Scenario, workload: RqsGenerator) -> float:
    """Mean requests per second one open class offers over the horizon (0 if closed)."""
    if workload.arrival_rate is not None:
        horizon = scenario.sim_settings.total_simulation_time
        return workload.arrival_rate.integral(horizon) / horizon
    return workload.mean_users_rate()


def _idle_cores(scenario: Scenario) -> Iterator[Problem]:
    """A concurrency cap under the core count: some cores can never be busy."""
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        cap = server.admission.max_concurrency if server.admission is not None else None
        cores = server.server_resources.cpu_cores
        if cap is not None and cap < cores:
            yield Problem(
                (*SERVERS, i, "admission", "max_concurrency"),
                f"server '{server.id}' admits at most {cap} requests at once but has {cores} "
                f"cores: {cores - cap} of them can never be busy",
            )


def _idle_balancers(scenario: Scenario) -> Iterator[Problem]:
    """A load balancer no edge reaches and no call step names never receives a request."""
    graph = scenario.topology_graph
    reached = {edge.target for edge in graph.edges} | {site.target for site in call_sites(scenario)}
    for where, lb in graph.nodes.balancers():
        if lb.id not in reached:
            yield Problem(
                where,
                f"load balancer '{lb.id}' is fed by nothing: no edge ends at it and no call "
                "step names it, so its servers get no requests through it",
            )


def _implicit_distributions(scenario: Scenario) -> Iterator[Problem]:
    """A duration written `{mean: 0.002}` is Poisson, AsyncFlow's default: whole seconds."""
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        for j, endpoint in enumerate(server.endpoints):
            steps = (*SERVERS, i, "endpoints", j, "steps")
            for _, loc, step in walk_steps(endpoint.steps, steps):
                if not isinstance(step, OperationStep):
                    continue
                value = step.value
                if isinstance(value, RVConfig) and "distribution" not in value.model_fields_set:
                    yield Problem(
                        (*loc, "step_operation", step.operation.value),
                        _poisson_duration(value.mean),
                    )
        if server.failures is not None:
            for name in ("time_to_failure", "time_to_repair"):
                variable: RVConfig = getattr(server.failures, name)
                if "distribution" not in variable.model_fields_set:
                    yield Problem(
                        (*SERVERS, i, "failures", name),
                        f"server '{server.id}': {_poisson_duration(variable.mean)}",
                    )
    for i, edge in enumerate(scenario.topology_graph.edges):
        if "distribution" not in edge.latency.model_fields_set:
            yield Problem(
                ("topology_graph", "edges", i, "latency"),
                f"edge '{edge.id}': {_poisson_duration(edge.latency.mean)}",
            )


def _poisson_duration(mean: float) -> str:
    # P(X = 0) = e^-m for a Poisson variable of mean m.
    zero = math.exp(-mean)
    return (
        f"no distribution given, so this duration is Poisson with mean {readable(mean)} s "
        f"(AsyncFlow's default): every draw is a whole number of seconds, "
        f"{zero:.0%} of them 0 s; write distribution: exponential (or deterministic) "
        "for a duration in fractions of a second"
    )


def _default_dropout(scenario: Scenario) -> Iterator[Problem]:
    """Every edge left at the 1% default drops requests on every hop, which few intend."""
    edges = scenario.topology_graph.edges
    if any("dropout_rate" in edge.model_fields_set for edge in edges):
        return
    hops = _hops_per_request(scenario)
    lost = 1 - (1 - DEFAULT_DROPOUT_RATE) ** hops
    yield Problem(
        ("topology_graph", "edges"),
        f"no edge sets dropout_rate, so every edge drops {DEFAULT_DROPOUT_RATE:.0%} of the "
        f"requests crossing it (AsyncFlow's default): about {lost:.1%} of the requests are "
        f"lost on a route of {hops} edges; write dropout_rate: 0 on lossless links",
    )


def _hops_per_request(scenario: Scenario) -> int:
    """Edges on a request's route, the first branch taken at a load balancer (the edges
    calls use are not routes)."""
    calls = call_edges(scenario)
    out: dict[str, str] = {}
    for edge in scenario.topology_graph.edges:
        if (edge.source, edge.target) not in calls:
            out.setdefault(edge.source, edge.target)
    client = scenario.topology_graph.nodes.client.id
    node, hops = out[scenario.rqs_input.id], 1
    while hops <= len(out):
        node = out[node]
        hops += 1
        if node == client:
            break
    return hops


def _overloaded_servers(scenario: Scenario) -> Iterator[Problem]:
    """Servers offered more CPU work than their cores, or more connection time than a pool
    holds: their queues grow without bound.

    Offered load per server is λ_s x E[CPU time per request] / cores (utilisation of
    an M/G/c station, e.g. Kleinrock, *Queueing Systems* vol. 1, §2.1), with λ_s the
    mean arrival rate (users x rpm / 60, or a schedule's mean over the horizon, summed
    over the open workload classes) thinned by the dropout of the edges before it and
    shared out by the balancers: evenly (round robin, random) or by `weights`
    (weighted round robin); plus the calls of its callers, λ_caller x the mean calls
    to it per request (over the endpoint mix and the hit or miss ratios of cache
    steps), thinned and shared out the same way (`_arrival_rates`). The CPU time is
    the mean over the endpoint mix of the declared CPU step means, cache branches
    weighed by their ratios; a pool's load is likewise the I/O time of the steps
    that hold its connections over its size. A balancer whose policy reads the load
    (`LoadBalancerAlgorithm.reads_load`: least connection, power of two choices) sends
    less to a busier server, so only the pooled CPU load of its servers is checked. A
    server with `admission` caps rejects what it cannot queue, so its overload is taken
    as meant and not warned about. The warning names the queue that grows
    (`Gates.backlog`): the ready queue, or the waiters of the callers' pools that cap
    the requests reaching the server.
    """
    nodes = scenario.topology_graph.nodes
    arrivals, from_calls = _arrival_rates(scenario)
    gates = Gates.of(scenario, arrivals, from_calls)
    servers = {server.id: (i, server) for i, server in enumerate(nodes.servers)}
    pooled: set[str] = set()
    for where, lb in nodes.balancers():
        if not lb.algorithms.reads_load:
            continue
        pooled |= set(lb.server_covered)
        capped = all(servers[s][1].admission is not None for s in lb.server_covered)
        work = sum(arrivals.get(s, 0.0) * _cpu_seconds(servers[s][1]) for s in lb.server_covered)
        cores = sum(
            servers[s][1].server_resources.cpu_cores * servers[s][1].copies
            for s in lb.server_covered
        )
        if work > cores and not capped:
            yield Problem(
                where,
                f"the servers behind load balancer '{lb.id}' are offered "
                f"{work:.3g} core-seconds of CPU work per second for {cores} cores: "
                f"utilisation {work / cores:.0%}, above 100%, so their queues grow "
                "without bound",
            )
    for server_id, (i, server) in servers.items():
        rate = arrivals.get(server_id, 0.0)
        if rate == 0:
            continue
        cores = server.server_resources.cpu_cores * server.copies
        work = rate * _cpu_seconds(server)
        if server_id not in pooled and work > cores and server.admission is None:
            called = sum(from_calls.get(server_id, {}).values())
            via = f", {readable(round(called, 3))} of them by calls" if called else ""
            backlog = gates.backlog(server, cores)
            yield Problem(
                (*SERVERS, i),
                f"server '{server_id}' is offered {work:.3g} core-seconds of CPU work per "
                f"second ({readable(round(rate, 3))} requests/s{via}) for "
                f"{_cores(server.server_resources.cpu_cores, server)}: "
                f"utilisation {work / cores:.0%}, above 100%, so {backlog.grows} without "
                f"bound{backlog.bound}",
            )
        yield from _overloaded_pools(i, server, rate)


def _cores(cores: int, server: Server) -> str:
    """`4 core(s)`, or for a replica group `12 cores (3 replicas x 4)`."""
    if server.replicas is None:
        return f"{cores} core(s)"
    if server.autoscaler is not None:
        most = server.autoscaler.max_replicas
        return f"{cores * most} cores (max_replicas {most} x {cores})"
    return f"{cores * server.replicas} cores ({server.replicas} replicas x {cores})"


def _overloaded_pools(i: int, server: Server, rate: float) -> Iterator[Problem]:
    """`rate` is the server's arrival rate, over all its replicas: each replica has the
    pool, so their sizes add up."""
    resources = server.server_resources
    for pool, each in resources.pool_sizes().items():
        size = each * server.copies
        held = rate * _mean_seconds(server, partial(_holds, server, pool))
        if held > size:
            field = "db_connection_pool" if pool == DB_POOL else "connection_pools"
            loc = (*SERVERS, i, "server_resources", field)
            yield Problem(
                loc if field == "db_connection_pool" else (*loc, pool),
                f"pool '{pool}' of server '{server.id}' is offered {held:.3g} "
                f"connection-seconds per second for {size} connection(s): utilisation "
                f"{held / size:.0%}, above 100%, so the requests waiting for a connection "
                "grow without bound",
            )


def _holds(server: Server, pool: str, step: TimedStep) -> bool:
    return server.pool_of(step) == pool


def _cpu_seconds(server: Server) -> float:
    """Mean CPU seconds a request costs `server`, over its endpoint mix."""
    return _mean_seconds(server, lambda step: isinstance(step, CpuStep))


def _mean_seconds(server: Server, counted: Callable[[TimedStep], bool]) -> float:
    """Mean seconds per request of the `counted` CPU and I/O steps of `server`, over its
    endpoint mix."""
    seconds = 0.0
    for visits, step, _ in _step_visits(server):
        if isinstance(step, TimedStep) and counted(step):
            value = step.value
            seconds += visits * (value.mean if isinstance(value, RVConfig) else value)
    return seconds


def _step_visits(server: Server) -> Iterator[tuple[float, Step, dict[str, str]]]:
    """Every step of `server` with the mean number of times a request runs it (its
    endpoint's share of the mix times the hit or miss ratio of each cache step above it),
    and the gates before it: for each node an earlier call step on the request's path
    called holding a connection, that connection's pool."""
    share = 1.0 / len(server.endpoints)
    weights = [endpoint.probability or share for endpoint in server.endpoints]
    total = sum(weights)

    def walk(
        steps: list[Step], visits: float, gates: dict[str, str]
    ) -> Iterator[tuple[float, Step, dict[str, str]]]:
        for step in steps:
            yield visits, step, gates
            if isinstance(step, CacheStep):
                yield from walk(step.hit, visits * step.hit_ratio, gates)
                yield from walk(step.miss, visits * (1 - step.hit_ratio), gates)
            elif isinstance(step, CallStep) and step.pool is not None:
                gates = gates | dict.fromkeys(step.call_targets, step.pool)

    for weight, endpoint in zip(weights, server.endpoints, strict=True):
        yield from walk(endpoint.steps, weight / total, {})


def _shares(lb: LoadBalancer, copies: dict[str, int]) -> dict[str, float]:
    """The share of the balancer's requests each covered server gets, in the long run; a
    replica group's is its replicas' together, each weighing what the group does."""
    weights = {server_id: 1.0 for server_id in lb.server_covered}
    if lb.algorithms is LoadBalancerAlgorithm.WEIGHTED_ROUND_ROBIN and lb.weights:
        weights |= lb.weights
    weights = {
        server_id: weight * copies.get(server_id, 1) for server_id, weight in weights.items()
    }
    total = sum(weights.values())
    return {server_id: weight / total for server_id, weight in weights.items()}


def _arrival_rates(scenario: Scenario) -> tuple[dict[str, float], CallsIn]:
    """Mean requests per second reaching each node, and the part of it sent by calls.

    Requests follow the route edges from the client (call edges left out); the graph
    from the client back to it is loop-free (validated), so a walk in topological
    order sees each node once all its inbound traffic is known. Then calls: each
    server, in an order where callers come before the servers they call (the call
    graph is acyclic once valid), sends each call target its rate times the mean
    calls per request of its steps naming it, thinned by the edge to it and shared
    out by a balancer target.
    """
    graph = scenario.topology_graph
    client = graph.nodes.client.id
    calls = call_edges(scenario)
    kept_on: dict[tuple[str, str], float] = {}
    out: dict[str, list[tuple[str, float]]] = {}
    for edge in graph.edges:
        kept_on[(edge.source, edge.target)] = 1 - edge.dropout_rate
        if (edge.source, edge.target) not in calls:
            out.setdefault(edge.source, []).append((edge.target, 1 - edge.dropout_rate))
    # Each generator's one edge, to the client; closed classes count as 0 (bounded).
    rate = sum(mean_arrival_rate(scenario, w) * out[w.id][0][1] for w in scenario.generators)
    arriving: dict[str, float] = {client: rate}
    copies = {server.id: server.copies for server in graph.nodes.servers}
    shares = {lb.id: _shares(lb, copies) for _, lb in graph.nodes.balancers()}
    waiting = _inbound_counts(out, client)
    ready = [client]
    while ready:
        node = ready.pop()
        for target, kept in out.get(node, []):
            if target == client:
                continue
            # A balancer shares its requests out; any other node has one out edge.
            share = shares[node].get(target, 0.0) if node in shares else 1.0
            arriving[target] = arriving.get(target, 0.0) + arriving[node] * share * kept
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    del arriving[client]
    from_calls: CallsIn = {}
    servers = {server.id: server for server in graph.nodes.servers}
    for caller in _callers_first(scenario):
        for visits, step, gates in _step_visits(servers[caller]):
            if not isinstance(step, CallStep):
                continue
            for target in step.call_targets:
                # A call after a pooled call to the same node comes only as fast as the
                # requests get through that pool: it waits behind that pool too.
                source = (caller, step.pool or gates.get(target))
                sent = arriving.get(caller, 0.0) * visits * kept_on.get((caller, target), 1.0)
                spread = shares.get(target, {target: 1.0})
                for server_id, share in spread.items():
                    # A balancer's edge to the server thins it too; a server is its own.
                    reached = sent * share * kept_on.get((target, server_id), 1.0)
                    arriving[server_id] = arriving.get(server_id, 0.0) + reached
                    by_caller = from_calls.setdefault(server_id, {})
                    by_caller[source] = by_caller.get(source, 0.0) + reached
    return arriving, from_calls


def _callers_first(scenario: Scenario) -> list[str]:
    """Every server, each before the servers its calls reach (Kahn's order of the call
    graph; a server on a cycle, refused by validation, is left out)."""
    graph: dict[str, set[str]] = {
        server.id: set() for server in scenario.topology_graph.nodes.servers
    }
    for site in call_sites(scenario):
        graph[site.caller] |= set(answering_servers(scenario, site.target))
    inbound = dict.fromkeys(graph, 0)
    for targets in graph.values():
        for target in targets:
            if target in inbound:
                inbound[target] += 1
    order: list[str] = []
    ready = [server_id for server_id, count in inbound.items() if count == 0]
    while ready:
        node = ready.pop(0)
        order.append(node)
        for target in sorted(graph[node]):
            if target in inbound:
                inbound[target] -= 1
                if inbound[target] == 0:
                    ready.append(target)
    return order


def _inbound_counts(out: dict[str, list[tuple[str, float]]], client: str) -> dict[str, int]:
    """Edges into each node reachable from the client, the client's own inbound left out."""
    counts: dict[str, int] = {}
    seen = {client}
    stack = [client]
    while stack:
        for target, _ in out.get(stack.pop(), []):
            if target == client:
                continue
            counts[target] = counts.get(target, 0) + 1
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return counts
