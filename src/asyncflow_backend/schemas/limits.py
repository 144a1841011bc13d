"""Size limits on a scenario, so one request cannot occupy a worker or the database forever.

The limits are configuration (see `asyncflow_backend.config.settings`); each
problem names the environment variable that raises the limit.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from asyncflow_backend.config.environment import env_name
from asyncflow_backend.metrics.catalogue import METRICS, ComponentKind
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.calls import answering_servers, call_edges
from asyncflow_backend.schemas.replicas import edge_count
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.steps import CacheStep, CallStep, RamStep, Step, walk_steps
from asyncflow_backend.schemas.validation import Loc, Problem
from asyncflow_backend.schemas.workload import WorkloadModel


@dataclass(frozen=True)
class ScenarioLimits:
    """The largest scenario a run may have; field names match the settings' fields."""

    max_nodes: int = 100
    max_edges: int = 200
    max_endpoints: int = 100
    max_steps: int = 1000
    max_events: int = 200
    max_horizon_s: float = 86_400
    max_expected_requests: float = 5_000_000
    max_samples: int = 5_000_000
    max_scheduled_events: float = 100_000_000


_num = readable


@dataclass(frozen=True)
class ScheduledEvents:
    """What the engine will schedule over the horizon, counted the way SimPy counts events.

    `requests` uses the peak arrival rate and the longest route, so it is an
    upper estimate: per request, one arrival, one timeout per edge crossed and
    one per CPU or I/O step (RAM and cores are granted without an event), and one
    per timer of a client or call timeout; with retries (a client's or a call step's),
    every attempt a policy may send and one backoff timer per retry, a late attempt
    (timed out while the servers keep working on it) costing as much as an answered one.
    """

    sampler_ticks: float
    """horizon / sample_period_s, or 0 when no metric is sampled (the sampler then does not run)."""
    generator_windows: float
    """horizon / user_sampling_window: one timeout at the end of each window (users per
    window); the pieces a rate schedule is thinned by (a rate schedule); 0 (closed)."""
    injections: int
    """Two per injected event: the window opens, then closes."""
    per_request: int
    requests: float
    failures: float = 0.0
    """Two per failure cycle (a failure, then its repair) of each server with `failures`:
    horizon / (MTTF + MTTR) cycles, rounded up."""

    @property
    def total(self) -> float:
        """Every event together."""
        return (
            self.sampler_ticks
            + self.generator_windows
            + self.injections
            + self.failures
            + self.requests * self.per_request
        )


CallCost = Callable[[CallStep, list[tuple[bool, int]]], int]
"""The cost of one call step, given for each of its targets whether the call goes through a
balancer and the costliest visit of a server that may answer it."""


def _per_visit(
    scenario: Scenario, step_cost: Callable[[Step], int], call_cost: CallCost
) -> dict[str, int]:
    """A cost of one visit to each server on its costliest endpoint: the sum over its steps
    of `step_cost`, of `call_cost` for a call step (calls nest), and the costlier branch of
    a cache step. The call graph is acyclic once valid; a cycle met here counts once."""
    servers = {server.id: server for server in scenario.topology_graph.nodes.servers}
    costs: dict[str, int] = {}

    def steps_cost(steps: list[Step], visiting: set[str]) -> int:
        total = 0
        for step in steps:
            if isinstance(step, CacheStep):
                total += max(steps_cost(step.hit, visiting), steps_cost(step.miss, visiting))
            elif isinstance(step, CallStep):
                targets = []
                for target in step.call_targets:
                    answering = answering_servers(scenario, target)
                    callee = max((visit(s, visiting) for s in answering if s in servers), default=0)
                    targets.append((target not in servers, callee))
                total += call_cost(step, targets)
            else:
                total += step_cost(step)
        return total

    def visit(server_id: str, visiting: set[str]) -> int:
        if server_id in costs:
            return costs[server_id]
        if server_id in visiting:
            return 0
        visiting.add(server_id)
        cost = max(steps_cost(ep.steps, visiting) for ep in servers[server_id].endpoints)
        visiting.discard(server_id)
        costs[server_id] = cost
        return cost

    for server_id in servers:
        visit(server_id, set())
    return costs


def _call_events(step: CallStep, targets: list[tuple[bool, int]]) -> int:
    """Per attempt the call's timer, and per target the two edges (three through a
    balancer: to it, then on) and the called server's visit; a backoff timer before each
    retry. Every attempt a policy may send is counted, whatever the budget lets through,
    and a late attempt costs its callee as much as an answered one."""
    call = int(step.timeout_s is not None)
    call += sum(2 + via_balancer + callee for via_balancer, callee in targets)
    attempts = 1 if step.retry is None else step.retry.max_attempts
    return call * attempts + attempts - 1


def _visit_costs(scenario: Scenario) -> dict[str, int]:
    """Events of one visit to each server on its costliest endpoint: one per timed step
    (RAM is granted without an event) and `_call_events` per call step."""
    return _per_visit(scenario, lambda step: int(not isinstance(step, RamStep)), _call_events)


def _late_calls(step: CallStep, targets: list[tuple[bool, int]]) -> int:
    """Per target, the step's attempts alive at once, each with what its own visit leaves
    alive, except the attempt the call waits for: a x (1 + late) - 1."""
    return sum(step.attempts_alive * (1 + late) - 1 for _, late in targets)


def late_sub_requests(scenario: Scenario) -> int:
    """Most sub-requests one attempt of a request may leave alive beyond the one each call
    waits for, along the costliest route: the late attempts of call steps whose timed-out
    rounds are sent again while the called servers keep working (`CallStep.attempts_alive`),
    nested calls included. 0 when no call step lets attempts pile up."""
    return _route_cost(scenario, _per_visit(scenario, lambda step: 0, _late_calls), hop=0)


def _route_cost(scenario: Scenario, own: dict[str, int], hop: int) -> int:
    """The most a route from the client back to it may cost: the sum of `own` over the
    nodes it visits, plus `hop` per edge it crosses (call edges are not routes).

    Walks the graph without recursion, so any number of nodes is safe.
    """
    graph = scenario.topology_graph
    client = graph.nodes.client.id
    calls = call_edges(scenario)
    out: dict[str, list[str]] = {}
    for edge in graph.edges:
        if (edge.source, edge.target) not in calls:
            out.setdefault(edge.source, []).append(edge.target)
    # cost[node]: from arriving at `node` until the request is back at the client,
    # computed children first by a depth-first walk with an explicit stack.
    cost: dict[str, int] = {}
    on_path = {client}
    stack = [(client, iter(out.get(client, ())))]
    while stack:
        node, children = stack[-1]
        child = next((t for t in children if t not in cost and t not in on_path), None)
        if child is not None:
            on_path.add(child)
            stack.append((child, iter(out.get(child, ()))))
            continue
        stack.pop()
        on_path.discard(node)
        # Back at the client costs nothing more; a loop (refused by validation) counts once.
        onward = max((hop + cost.get(t, 0) for t in out.get(node, ())), default=0)
        cost[node] = own.get(node, 0) + onward
    return cost[client]


def events_per_request(scenario: Scenario) -> int:
    """Events of one request along the longest route: the arrival, each edge, each timed step."""
    # The arrival itself, the edge from the generator to the client, and the client's
    # timer when it has a timeout; each retry costs an attempt from the client and the
    # backoff timer before it (every allowed retry counted, whatever the budget).
    workload = scenario.rqs_input
    attempt = (workload.timeout_s is not None) + _route_cost(scenario, _visit_costs(scenario), 1)
    retries = 0 if workload.retry is None else workload.retry.max_attempts - 1
    return 2 + attempt + retries * (1 + attempt)


def scheduled_events(scenario: Scenario) -> ScheduledEvents:
    """The events the engine will schedule for `scenario`, by source."""
    settings = scenario.sim_settings
    horizon = settings.total_simulation_time
    sampled = sampled_series_count(scenario) > 0
    closed = any(w.model is WorkloadModel.CLOSED for w in scenario.generators)
    return ScheduledEvents(
        sampler_ticks=math.ceil(horizon / settings.sample_period_s) if sampled else 0,
        generator_windows=_generator_windows(scenario),
        injections=2 * len(scenario.events or ()),
        per_request=events_per_request(scenario) + CLOSED_EVENTS_PER_REQUEST * closed,
        requests=horizon * scenario.peak_arrival_rate,
        failures=sum(
            2
            * server.copies
            * math.ceil(horizon / (f.time_to_failure.mean + f.time_to_repair.mean))
            for server in scenario.topology_graph.nodes.servers
            if (f := server.failures) is not None
        ),
    )


CLOSED_EVENTS_PER_REQUEST = 2
"""A closed user's wait for the end of its request, and its think time."""


def _generator_windows(scenario: Scenario) -> float:
    horizon = scenario.sim_settings.total_simulation_time
    windows = 0.0
    for workload in scenario.generators:
        match workload.model:
            case WorkloadModel.RATE_SCHEDULE:
                assert workload.arrival_rate is not None
                windows += len(workload.arrival_rate.pieces(horizon))
            case WorkloadModel.USERS_PER_WINDOW:
                windows += math.ceil(horizon / workload.user_sampling_window)
    return windows


def sampled_series_count(scenario: Scenario) -> int:
    """How many time series the run will sample: one per enabled metric and component
    (each replica of a replica group, and each copy of its edges, is a component)."""
    servers = scenario.topology_graph.nodes.servers
    components = {
        ComponentKind.SERVER: sum(s.copies for s in servers),
        ComponentKind.EDGE: edge_count(scenario),
        ComponentKind.POOL: sum(len(s.server_resources.pool_sizes()) * s.copies for s in servers),
    }
    return sum(
        components[METRICS[metric].kind]
        for metric in set(scenario.sim_settings.enabled_sample_metrics)
    )


def _piling_call(scenario: Scenario) -> tuple[Loc, int]:
    """The call step that keeps the most attempts of a sub-request alive at once, at its
    retry's `max_attempts`, with that number (1 at `()` when none piles up)."""
    found: tuple[Loc, int] = ((), 1)
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        for j, endpoint in enumerate(server.endpoints):
            where: Loc = ("topology_graph", "nodes", "servers", i, "endpoints", j, "steps")
            for _, loc, step in walk_steps(endpoint.steps, where):
                if isinstance(step, CallStep) and step.attempts_alive > found[1]:
                    found = ((*loc, "retry", "max_attempts"), step.attempts_alive)
    return found


def _check_attempts_alive(
    scenario: Scenario, limits: ScenarioLimits, over: Callable[[Loc, str, str], None]
) -> None:
    """Count every attempt that may be alive at once against the expected requests.

    When timed-out attempts are retried while the servers keep working on them, the
    late attempts pile up with the new ones: each is a request in memory (about 30 KB
    a request at 100 attempts), so the bound that keeps a run's requests in memory
    small must count them. A client's late attempts and a call step's late sub-requests
    multiply: a workload class w counts E[requests of w] x `attempts_alive` of w x
    (1 + `late_sub_requests`), each attempt driving its own calls. Called only when the
    requests alone are within the limit; the problem names the retry policy that keeps
    the most attempts alive (the client's on a tie).
    """
    alive = [(w, w.attempts_alive) for w in scenario.generators]
    late = late_sub_requests(scenario)
    if late == 0 and all(attempts == 1 for _, attempts in alive):
        return
    total = sum(scenario.class_expected_requests(w) * attempts for w, attempts in alive)
    total *= 1 + late
    if total <= limits.max_expected_requests:
        return
    requests = _num(scenario.expected_requests)
    workload, attempts = max(alive, key=lambda pair: pair[1])
    call_loc, call_attempts = _piling_call(scenario)
    if call_attempts > attempts:
        over(
            call_loc,
            f"{_num(total)} expected requests and late attempts ({requests} requests; the call "
            f"step keeps up to {call_attempts} attempts of each sub-request alive at once: "
            "timed-out sub-requests are sent again while the called servers keep working on "
            "them; use on_timeout: cancel, fewer attempts or fewer requests)",
            "max_expected_requests",
        )
        return
    if workload is scenario.rqs_input:
        loc: Loc = ("rqs_input", "retry", "max_attempts")
    else:
        index = scenario.generators.index(workload) - 1
        loc = ("workload_classes", index, "retry", "max_attempts")
    over(
        loc,
        f"{_num(total)} expected requests and late attempts ({requests}"
        f" requests, up to {attempts} attempts each alive at once: timed-out attempts are "
        "retried while the servers keep working on them; use on_timeout: cancel, fewer "
        "attempts or fewer requests)",
        "max_expected_requests",
    )


def check_limits(scenario: Scenario, limits: ScenarioLimits) -> list[Problem]:
    """Every limit the scenario exceeds, each located at the field that makes it too large."""
    problems: list[Problem] = []
    nodes = scenario.topology_graph.nodes
    servers = nodes.servers

    def over(loc: Loc, what: str, field: str, unit: str = "") -> None:
        limit = getattr(limits, field)
        problems.append(
            Problem(loc, f"{what} exceeds the limit of {_num(limit)}{unit} ({env_name(field)})")
        )

    # A replica group counts as the servers (and edges) it stands for in the run.
    # A replica group counts as the servers (and edges) it stands for in the run, and a
    # limit it breaks is located at the largest group's `replicas`.
    replicated = sum(server.copies for server in servers if server.replicas is not None)
    of_which = f", {replicated} of them replicas" if replicated else ""
    largest = max(
        range(len(servers)), key=lambda i: servers[i].copies if servers[i].replicas else 0
    )
    by_replicas: Loc | None = (
        ("topology_graph", "nodes", "servers", largest, "replicas") if replicated else None
    )
    node_count = 1 + len(nodes.balancers()) + sum(server.copies for server in servers)
    if node_count > limits.max_nodes:
        loc_nodes = by_replicas or ("topology_graph", "nodes")
        over(loc_nodes, f"{node_count} nodes{of_which}", "max_nodes")
    edges = edge_count(scenario)
    if edges > limits.max_edges:
        copied = " (the edges of replica groups copied for each replica)" if replicated else ""
        over(by_replicas or ("topology_graph", "edges"), f"{edges} edges{copied}", "max_edges")
    endpoint_count = sum(len(server.endpoints) * server.copies for server in servers)
    if endpoint_count > limits.max_endpoints:
        over(
            ("topology_graph", "nodes", "servers"),
            f"{endpoint_count} endpoints{of_which and ' (each replica has its own)'}",
            "max_endpoints",
        )
    step_count = sum(len(ep.steps) * server.copies for server in servers for ep in server.endpoints)
    if step_count > limits.max_steps:
        over(("topology_graph", "nodes", "servers"), f"{step_count} steps", "max_steps")
    event_count = len(scenario.events or ())
    if event_count > limits.max_events:
        over(("events",), f"{event_count} events", "max_events")

    horizon = scenario.sim_settings.total_simulation_time
    if horizon > limits.max_horizon_s:
        over(
            ("sim_settings", "total_simulation_time"),
            f"horizon {_num(horizon)} s",
            "max_horizon_s",
            " s",
        )
    rate = scenario.peak_arrival_rate
    if len(scenario.generators) > 1:
        expected = scenario.expected_requests
        reason = f"the sum over {len(scenario.generators)} workload classes"
        loc: tuple[str, ...] = ("workload_classes",)
    elif scenario.rqs_input.model is WorkloadModel.RATE_SCHEDULE:
        expected = scenario.expected_requests
        reason = f"the integral of the arrival rate over {_num(horizon)} s; peak {_num(rate)}/s"
        loc = ("rqs_input", "arrival_rate")
    else:
        expected = horizon * rate
        reason = f"horizon {_num(horizon)} s x peak rate {_num(rate)}/s"
        loc = ("rqs_input",)
    if expected > limits.max_expected_requests:
        over(loc, f"{_num(expected)} expected requests ({reason})", "max_expected_requests")
    else:
        _check_attempts_alive(scenario, limits, over)
    period = scenario.sim_settings.sample_period_s
    series = sampled_series_count(scenario)
    samples = horizon / period * series
    if samples > limits.max_samples:
        over(
            ("sim_settings", "sample_period_s"),
            f"{_num(samples)} samples ({_num(horizon / period)} ticks x {series} series)",
            "max_samples",
        )
    events = scheduled_events(scenario)
    if events.total > limits.max_scheduled_events:
        over(
            ("sim_settings",),
            f"{_num(events.total)} scheduled events ({_num(events.requests)} requests x "
            f"{events.per_request} events each on the longest route, "
            f"{_num(events.sampler_ticks)} sampler ticks, "
            f"{_num(events.generator_windows)} generator windows, "
            f"{events.injections} injection marks, {_num(events.failures)} failures and "
            "repairs)",
            "max_scheduled_events",
        )
    return problems
