"""Engine invariants on random valid scenarios (hypothesis).

The scenarios are small (1-4 servers, 5-20 s, a few requests per second) but
cover the language: balancers of both kinds or chains of servers, several
endpoints with CPU, RAM and I/O steps of fixed or random duration, random
latencies and dropout, network spikes and outages (of any server, requests waiting or
rejected while none is up), random failures that resume or lose the work, admission
caps, database pools, client timeouts, fixed or exponential, that keep working or
cancel, retries by the client and by call steps, with or without a budget, a rate
limit on the balancer and circuit breakers on calls.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncflow_backend.builder import (
    Amount,
    ScenarioBuilder,
    deterministic,
    exponential,
    log_normal,
    normal,
    poisson,
    retry_policy,
    uniform,
)
from asyncflow_backend.config.constants import CpuStepKind, IoStepKind, RamStepKind
from asyncflow_backend.resources.base import Resource
from asyncflow_backend.runtime.actors.failures import Resuming
from asyncflow_backend.runtime.actors.load_balancer import LoadBalancerRuntime
from asyncflow_backend.runtime.actors.retrying_client import attempt_of
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.request import RequestState, RetriedSubRequest
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import Scenario
from asyncflow_backend.schemas.results import SimulationResults
from asyncflow_backend.schemas.steps import StepKind

INVARIANT_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def amounts(low: float, high: float) -> st.SearchStrategy[Amount]:
    """A fixed number or a random variable of mean in [low, high]."""
    mean = st.floats(low, high)
    return st.one_of(
        mean,
        mean.map(exponential),
        mean.map(deterministic),
        mean.map(uniform),
        st.builds(lambda m, cv: normal(m, (m * cv) ** 2), mean, st.floats(0.01, 1)),
        st.builds(lambda m, cv: log_normal(m, (m * cv) ** 2), mean, st.floats(0.01, 2)),
    )


@st.composite
def endpoint_steps(draw: st.DrawFn, ram_mb: int) -> list[tuple[StepKind, Any]]:
    """1-4 steps; the RAM steps of an endpoint never add up to more than half the server."""
    steps: list[tuple[StepKind, Any]] = []
    ram_left = ram_mb // 2
    for _ in range(draw(st.integers(1, 4))):
        family = draw(st.sampled_from(["cpu", "io", "ram"]))
        if family == "ram" and ram_left >= 1:
            megabytes = draw(st.integers(1, ram_left))
            ram_left -= megabytes
            steps.append((RamStepKind.RAM, megabytes))
        elif family == "io":
            steps.append((draw(st.sampled_from(list(IoStepKind))), draw(amounts(0.0005, 0.2))))
        else:
            steps.append((draw(st.sampled_from(list(CpuStepKind))), draw(amounts(0.0002, 0.05))))
    return steps


@st.composite
def retry_options(draw: st.DrawFn) -> dict[str, Any]:
    """A retry policy's options: 2-4 attempts, some or all ends retried, a short backoff of
    any jitter, and a budget or none."""
    options: dict[str, Any] = {
        "max_attempts": draw(st.integers(2, 4)),
        "base_s": draw(st.floats(0.001, 0.1)),
        "jitter": draw(st.sampled_from(["full", "equal", "none"])),
    }
    options["cap_s"] = options["base_s"] * draw(st.floats(1, 8))
    outcomes = ["timed_out", "rejected", "dropped", "failed"]
    if draw(st.booleans()):
        options["retry_on"] = draw(st.lists(st.sampled_from(outcomes), min_size=1, unique=True))
    if draw(st.booleans()):
        options["budget_ratio"] = draw(st.floats(0.01, 1))
        options["budget_tokens"] = draw(st.integers(1, 20))
    return options


@st.composite
def circuit_breakers(draw: st.DrawFn) -> dict[str, Any]:
    """A circuit breaker with a small window, counting calls or seconds, quick to open."""
    window = draw(st.integers(1, 10))
    return {
        "failure_rate_threshold": draw(st.floats(1, 100)),
        "sliding_window_type": draw(st.sampled_from(["count_based", "time_based"])),
        "sliding_window_size": window,
        "minimum_number_of_calls": draw(st.integers(1, window)),
        "wait_duration_in_open_state": draw(st.floats(0.01, 2)),
        "permitted_number_of_calls_in_half_open_state": draw(st.integers(1, 5)),
    }


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    builder = ScenarioBuilder()
    users = draw(
        st.one_of(
            st.integers(1, 30).map(float),
            st.integers(1, 30).map(poisson),
            st.integers(1, 30).map(deterministic),
            st.integers(5, 30).map(lambda m: normal(m, m / 2)),
        )
    )
    rpm, window = draw(st.floats(1, 90)), draw(st.integers(1, 20))
    builder.generator("gen", users=users, rpm=rpm, window=window)
    builder.client("client")

    patience = st.one_of(st.floats(0.01, 2), st.floats(0.01, 2).map(exponential))
    if draw(st.booleans()):
        action = draw(st.sampled_from([None, "keep_working", "cancel"]))
        builder.timeout(draw(patience), on_timeout=action)
    if draw(st.booleans()):
        builder.retry(**draw(retry_options()))

    server_ids = [f"srv-{i}" for i in range(draw(st.integers(1, 4)))]
    caps = st.one_of(st.none(), st.integers(0, 5))
    when_down = st.sampled_from([None, "wait", "reject"])
    for server_id in server_ids:
        ram_mb = draw(st.integers(256, 4096))
        builder.server(
            server_id,
            cores=draw(st.integers(1, 4)),
            ram_mb=ram_mb,
            db_pool=draw(st.one_of(st.none(), st.integers(1, 3))),
            max_ready_queue=draw(caps),
            max_concurrency=draw(st.one_of(st.none(), st.integers(1, 10))),
            when_down=draw(when_down),
        )
        if draw(st.booleans()):
            builder.failures(
                draw(amounts(0.2, 5)),
                draw(amounts(0.05, 2)),
                work_in_progress=draw(st.sampled_from(["resume", "lose"])),
            )
        for e in range(draw(st.integers(1, 3))):
            weight = draw(st.none() | st.floats(0.05, 5))
            builder.endpoint(f"/ep-{e}", probability=weight)
            for kind, amount in draw(endpoint_steps(ram_mb)):
                if isinstance(kind, IoStepKind):
                    builder.io(kind, amount)
                elif isinstance(kind, CpuStepKind):
                    builder.cpu(amount, kind=kind)
                else:
                    builder.ram(amount)

    latencies = amounts(0.0005, 0.05)
    dropout = st.one_of(st.none(), st.just(0.0), st.floats(0, 0.2))

    def link(source: str, target: str) -> None:
        builder.edge(source, target, latency=draw(latencies), dropout=draw(dropout))

    balanced = draw(st.booleans())
    link("gen", "client")
    if balanced:
        algorithm = draw(st.sampled_from(["round_robin", "least_connection"]))
        limit: dict[str, Any] = {}
        if draw(st.booleans()):
            limit = {"rate_per_s": draw(st.floats(0.5, 30)), "burst": draw(st.integers(1, 10))}
        builder.load_balancer(
            "lb", covers=server_ids, algorithm=algorithm, when_none_up=draw(when_down), **limit
        )
        link("client", "lb")
        for server_id in server_ids:
            link("lb", server_id)
            link(server_id, "client")
    else:  # a chain: client -> srv-0 -> srv-1 -> ... -> client
        for source, target in zip(["client", *server_ids], [*server_ids, "client"], strict=True):
            link(source, target)

    horizon = draw(st.integers(5, 20))
    builder.settings(horizon=horizon, sample_period=draw(st.sampled_from([0.01, 0.05, 0.1])))
    edge_ids = [edge["id"] for edge in builder.to_dict()["topology_graph"]["edges"]]
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.floats(0, horizon - 1))
        end = draw(st.floats(start + 0.1, horizon))
        builder.spike(
            draw(st.sampled_from(edge_ids)), start=start, end=end, extra_s=draw(st.floats(0.001, 2))
        )
    # One outage at most per server (outages of one server may not overlap); every
    # server may be down at once.
    for server_id in server_ids:
        if draw(st.booleans()):
            start = draw(st.floats(0, horizon - 1))
            builder.outage(server_id, start=start, end=draw(st.floats(start + 0.1, horizon)))
    return builder.build()


@dataclass
class Observed:
    """A run's results and what the engine held when the horizon was reached."""

    results: SimulationResults
    in_system: int
    """Requests physically in the system: on edges, queued, on a core or in I/O."""
    awaited: int | None
    """Requests the client still waits for or has yet to see, with a client timeout (else
    None)."""
    ended: list[int]
    """The identity of each request every time it ended (completed or otherwise)."""
    late_grants: list[object]
    """Holders granted a resource after they were withdrawn from its queue."""
    withdrawn_left: int = 0
    """Withdrawn requests not yet stopped at the horizon: each must still be somewhere."""
    first_attempts: int = 0
    """Requests the client sent on for the first time."""
    sent: int = 0
    """Attempts the client put on the wire, first or not."""
    backing_off: int = 0
    """Requests waiting out a backoff before a retry: in flight, but on no wire."""
    call_sends: dict[str, list[int]] | None = None
    """By call site: [sub-requests put on its edge, of which retries], as the edge saw them."""


def watch_resources(resources: list[Resource[Any]], late_grants: list[object]) -> None:
    """Note every grant made to a holder after `withdraw` took it out of the queue."""
    for resource in resources:
        # The holders themselves, not their ids: kept alive, no new request can take an id.
        withdrawn: set[Any] = set()
        request, withdraw = resource.request, resource.withdraw

        def watched_request(
            holder: Any,
            granted: Callable[[Any], None],
            amount: float = 1,
            *,
            request: Any = request,
            withdrawn: set[Any] = withdrawn,
        ) -> Any:
            def checked(h: Any) -> None:
                if h in withdrawn:
                    late_grants.append(h)
                granted(h)

            return request(holder, checked, amount)

        def watched_withdraw(
            holder: Any, *, withdraw: Any = withdraw, withdrawn: set[Any] = withdrawn
        ) -> bool:
            taken: bool = withdraw(holder)
            if taken:
                withdrawn.add(holder)
            return taken

        resource.request = watched_request  # type: ignore[method-assign]
        resource.withdraw = watched_withdraw  # type: ignore[method-assign]


def waiting_while_down(server: ServerRuntime) -> int:
    """Requests a server that is down holds at its door, and those a failure stopped
    between steps (a cut burst, or a granted core, is already counted on its core)."""
    held = len(server.door.held) if server.door is not None else 0
    if isinstance(server.failure, Resuming):
        held += sum(
            1
            for later in server.failure.deferred
            if later.func.__name__ not in {"burn", "take_core"}
        )
    return held


def watch_call_edges(servers: Iterable[ServerRuntime]) -> dict[str, list[int]]:
    """Count, per call site, the sub-requests its edge is given, and the retries among them
    (each sub-request knows its site)."""
    counts: dict[str, list[int]] = {}
    for server in servers:
        for site in server.call_sites:
            counts[site.id] = [0, 0]
            edge = site.edge
            assert edge is not None
            if getattr(edge, "watched", False):
                continue
            send = edge.send

            def counted(sub: Any, *, send: Any = send) -> None:
                tally = counts[sub.site.id]
                tally[0] += 1
                tally[1] += isinstance(sub, RetriedSubRequest)
                send(sub)

            edge.send = counted  # type: ignore[method-assign]
            edge.watched = True  # type: ignore[attr-defined]
    return counts


def run_observed(scenario: Scenario, seed: int) -> Observed:
    runner = SimulationRunner(scenario, seed=seed)
    model = runner.model
    collector = model.collector
    kept: list[RequestState] = []  # kept alive so that identities stay unique
    ended: list[int] = []
    forward = model.client.receive
    record_end = collector.record_end

    def still_awaited(request: RequestState) -> bool:
        """Whether an end of `request` now counts: it has not timed out."""
        awaited = collector.awaited
        return awaited is None or not request.returning or request in awaited

    first_attempts = 0

    def receive(request: RequestState) -> None:
        nonlocal first_attempts
        if request.returning and still_awaited(request):
            kept.append(request)
            ended.append(identity(request))
        first_attempts += not request.returning
        forward(request)

    def end(request: Any, *args: Any) -> None:
        counts = still_awaited(request)
        backing_off = getattr(model.client, "backing_off", 0)
        record_end(request, *args)
        if counts and getattr(model.client, "backing_off", 0) == backing_off:  # not retried
            kept.append(request)
            ended.append(identity(request))

    model.client.receive = receive  # type: ignore[method-assign]
    collector.record_end = end  # type: ignore[method-assign]
    client_edge = model.client.out_edge
    assert client_edge is not None
    sent = 0
    send = client_edge.send

    def counted_send(request: RequestState) -> None:
        nonlocal sent
        sent += 1
        send(request)

    client_edge.send = counted_send  # type: ignore[method-assign]
    call_sends = watch_call_edges(model.servers.values())
    late_grants: list[object] = []
    for server in model.servers.values():
        watch_resources([server.cores, server.ram, *server.pools], late_grants)
    results = runner.run(slices=4)
    on_edges = sum(edge.open_connections for edge in model.edges.values())
    in_servers = sum(
        server.ram.queued
        + server.cores.queued
        + server.cores.busy
        + server.io_waiting
        + sum(pool.queued for pool in server.pools)
        + waiting_while_down(server)
        # sub-requests in a backoff, between two attempts
        + (0 if server.calls is None else server.calls.retrying)
        for server in model.servers.values()
    )
    in_servers += sum(len(lb._held) for lb in model.of_kind(LoadBalancerRuntime))
    awaited = None
    if collector.awaited is not None:
        # The client awaits a request from its first visit: those still on the generator's
        # edge are in flight too.
        generator_edge = next(
            e.id for e in scenario.topology_graph.edges if e.source == scenario.rqs_input.id
        )
        awaited = len(collector.awaited) + model.edges[generator_edge].open_connections
    withdrawn = collector.withdrawn
    return Observed(
        results,
        on_edges + in_servers,
        awaited,
        ended,
        late_grants,
        0 if withdrawn is None else len(withdrawn),
        first_attempts,
        sent,
        getattr(model.client, "backing_off", 0),
        call_sends,
    )


def identity(request: RequestState) -> int:
    """The request an attempt belongs to: its first attempt, kept alive by the attempt."""
    return id(attempt_of(request)[0])


@INVARIANT_SETTINGS
@given(scenario=scenarios(), seed=st.integers(0, 2**32))
def test_engine_invariants(scenario: Scenario, seed: int) -> None:
    assert_invariants(scenario, run_observed(scenario, seed))


@st.composite
def congested_scenarios(draw: st.DrawFn) -> Scenario:
    """One server loaded near or past its capacity, with impatient clients that cancel: its
    RAM, ready queue and pool all queue, so that requests are withdrawn from each; it may
    call a database, with or without a call timeout that keeps working or cancels, and
    it may fail, resuming or losing its work."""
    builder = ScenarioBuilder()
    builder.generator("gen", users=deterministic(draw(st.integers(20, 80))), rpm=60)
    builder.timeout(
        draw(st.one_of(st.floats(0.02, 0.5), st.floats(0.02, 0.5).map(exponential))),
        on_timeout="cancel",
    )
    if draw(st.booleans()):
        builder.retry(**draw(retry_options()))
    builder.client("client")
    cores = draw(st.integers(1, 2))
    builder.server(
        "srv",
        cores=cores,
        ram_mb=256,
        db_pool=draw(st.integers(1, 3)),
        max_ready_queue=draw(st.one_of(st.none(), st.integers(0, 8))),
        max_concurrency=draw(st.one_of(st.none(), st.integers(4, 30))),
    )
    if draw(st.booleans()):
        builder.failures(
            exponential(draw(st.floats(0.5, 4))),
            exponential(draw(st.floats(0.05, 1))),
            work_in_progress=draw(st.sampled_from(["resume", "lose"])),
        )
    builder.endpoint("/api").ram(draw(st.integers(16, 64)))
    calls = False
    for _ in range(draw(st.integers(1, 3))):
        step = draw(st.sampled_from(["cpu", "io", "call"]))
        if step == "cpu":
            builder.cpu(exponential(draw(st.floats(0.005, 0.04)) * cores))
        elif step == "io":
            builder.io("io_db", exponential(draw(st.floats(0.005, 0.06))))
        else:
            calls = True
            retry = draw(st.none() | retry_options().map(lambda o: retry_policy(**o)))
            breaker = draw(st.none() | circuit_breakers())
            if draw(st.booleans()):
                builder.call("db", retry=retry, circuit_breaker=breaker)
            else:
                builder.call(
                    "db",
                    timeout_s=draw(st.floats(0.01, 0.2)),
                    on_timeout=draw(st.sampled_from(["keep_working", "cancel"])),
                    retry=retry,
                    circuit_breaker=breaker,
                )
    if calls:
        builder.server("db", max_concurrency=draw(st.one_of(st.none(), st.integers(1, 5))))
        builder.endpoint("/q").cpu(exponential(draw(st.floats(0.005, 0.05))))
        builder.edge("srv", "db", latency=exponential(0.001), dropout=draw(st.floats(0, 0.05)))
        builder.edge("db", "srv", latency=exponential(0.001), dropout=0.0)
    builder.chain("gen", "client", "srv", "client", latency=exponential(0.002), dropout=0.0)
    builder.settings(horizon=draw(st.integers(5, 12)), sample_period=0.05)
    return builder.build()


@INVARIANT_SETTINGS
@given(scenario=congested_scenarios(), seed=st.integers(0, 2**32))
def test_engine_invariants_when_requests_are_withdrawn_from_every_queue(
    scenario: Scenario, seed: int
) -> None:
    assert_invariants(scenario, run_observed(scenario, seed))


def assert_invariants(scenario: Scenario, observed: Observed) -> None:
    """What must hold of any run, whatever the scenario."""
    results = observed.results
    requests = results.requests

    # Every generated request ends exactly one way or is still in flight: no request
    # ends twice, and each one that has not ended is really still awaited or in the system.
    assert len(observed.ended) == len(set(observed.ended))
    assert len(observed.ended) == requests.generated - requests.in_flight
    assert requests.generated == (
        requests.completed
        + requests.dropped
        + requests.failed
        + requests.timed_out
        + requests.rejected
        + requests.in_flight
    )
    backing_off = observed.backing_off
    if observed.awaited is None:
        assert requests.in_flight == observed.in_system + backing_off
        assert requests.timed_out == requests.late_answers == 0
    else:
        # Timed-out requests the servers keep working on are in the system, not in flight.
        assert requests.in_flight == observed.awaited + backing_off
        assert observed.awaited <= observed.in_system
    # Every attempt is a request on the wire: the first, and each retry.
    assert observed.sent == observed.first_attempts + requests.retries
    assert requests.attempts == requests.generated + requests.retries
    # The same of sub-requests: a call site's counts are what its edge was given.
    for site_id, (sends, retried) in (observed.call_sends or {}).items():
        call = results.calls[site_id]
        assert (call.sent, call.retries) == (sends, retried)
    retry = scenario.rqs_input.retry

    if retry is None:
        assert requests.retries == requests.retries_refused == 0
    elif retry.budget is not None:
        budget = retry.budget
        assert requests.retries <= budget.max_tokens + budget.ratio * observed.first_attempts + 1e-6
    assert observed.late_grants == []
    assert observed.withdrawn_left <= observed.in_system
    for outcome in ("dropped", "failed", "timed_out", "rejected"):
        assert getattr(requests, outcome) == sum(getattr(requests, f"{outcome}_at").values())
        assert getattr(requests, outcome) == sum(requests.per_second.get(outcome, []))
    assert sum(end.count for end in requests.ends) == requests.generated - requests.in_flight
    assert set(requests.dropped_at) <= {edge.id for edge in scenario.topology_graph.edges}
    nodes = scenario.topology_graph.nodes
    balancers = {balancer.id for _, balancer in nodes.balancers()}
    assert set(requests.rejected_at) <= {s.id for s in nodes.servers} | balancers

    latency = results.latency
    assert latency.count == requests.completed
    if latency.count:
        assert latency.min is not None
        assert latency.max is not None
        assert latency.min >= 0
        assert latency.min <= (latency.p50 or 0) <= (latency.p99 or 0) <= latency.max
        assert sum(latency.histogram.counts) == latency.count
    assert sum(results.throughput.per_second) == requests.completed + requests.late_answers
    assert results.throughput.goodput_rps == requests.completed / (
        scenario.sim_settings.total_simulation_time
    )
    assert len(results.throughput.per_second) == scenario.sim_settings.total_simulation_time

    for metric, components in results.time_series.series.items():
        for component, values in components.items():
            assert min(values, default=0) >= 0, (metric, component)
    ram_series = results.time_series.series["ram_in_use"]
    for server in scenario.topology_graph.nodes.servers:
        capacity = server.server_resources.ram_mb
        assert max(ram_series[server.id]) <= capacity
        stats = results.servers[server.id]
        assert stats.ram_peak_mb is not None
        assert stats.ram_peak_mb <= capacity
        assert 0 <= stats.cpu_utilisation <= 1


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32))
def test_same_seed_same_results_whatever_the_slicing(scenario: Scenario, seed: int) -> None:
    whole = SimulationRunner(scenario, seed=seed).run(slices=1)
    sliced = SimulationRunner(scenario, seed=seed).run(slices=37)

    assert whole.model_dump(exclude={"meta"}) == sliced.model_dump(exclude={"meta"})
    assert whole.meta.seed == sliced.meta.seed == seed
