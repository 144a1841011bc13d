"""Random failures and repairs, and servers that are down: what waits, what is lost, what
is rejected, and what a server that never goes down is built as."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, deterministic, exponential
from asyncflow_backend.resources import CoreSet
from asyncflow_backend.runtime.actors.failures import FailureModel, Losing, Resuming
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import ScenarioValidationError
from asyncflow_backend.schemas.results import SimulationResults
from asyncflow_backend.schemas.warnings import find_warnings
from support.scenarios import cpu_station


def ended(results: SimulationResults, outcome: str, place: str, reason: str) -> int:
    """Requests that ended with `outcome` at `place` for `reason`."""
    return sum(
        e.count
        for e in results.requests.ends
        if (e.outcome, e.place, e.reason) == (outcome, place, reason)
    )


def one_server(
    rate: float = 20,
    horizon: float = 60,
    cpu: Any = None,
    failures: tuple[Any, Any, str] | None = None,
    **server: Any,
) -> ScenarioBuilder:
    """Poisson `rate`/s into one server of `cpu` (exponential 10 ms) of CPU, at seed 3."""
    cpu = cpu if cpu is not None else exponential(0.01)
    return cpu_station(
        rate=rate,
        cpu=cpu,
        horizon_s=horizon,
        seed=3,
        failures=failures,
        sample_metrics=["ready_queue_len"],
        **server,
    )


def test_a_server_that_never_goes_down_is_built_as_before() -> None:
    server = SimulationRunner(one_server().build()).model.servers["srv"]

    assert server.door is None
    assert server.failure is None
    assert server.receive == server._admit
    assert server.burn == server._burn


@pytest.mark.parametrize(("mode", "kind"), [("resume", Resuming), ("lose", Losing)])
def test_a_server_with_failures_is_built_to_fail(mode: str, kind: type[FailureModel]) -> None:
    scenario = one_server(failures=(10, 5, mode), max_concurrency=50).build()
    server = SimulationRunner(scenario).model.servers["srv"]

    assert isinstance(server.failure, kind)
    assert server.door is not None
    assert server.receive == server.door.receive


def test_deterministic_failures_give_their_availability_and_downtime() -> None:
    # Up 10 s, down 5 s: down over [10, 15), [25, 30), [40, 45), [55, 60).
    results = run_scenario(one_server(failures=(10, 5, "resume")).build())
    stats = results.servers["srv"]

    assert stats.failures == 4
    assert stats.downtime_s == pytest.approx(20)
    # The last failure is not repaired by the horizon: its window ends there.
    assert stats.failure_windows == [(10, 15), (25, 30), (40, 45), (55, 60)]
    assert stats.availability == pytest.approx(40 / 60)
    # Nothing completes while it is down; what waited completes after the repair.
    per_second = results.throughput.per_second
    assert sum(per_second[11:15]) == 0
    assert results.requests.failed == results.requests.rejected == 0
    # The horizon falls in a failure: what arrived since 55 s waits at the door.
    assert results.requests.in_flight == pytest.approx(100, rel=0.3)


def test_a_cut_cpu_burst_resumes_its_remaining_time() -> None:
    # Up [0, 1), down [1, 3), up [3, 4), down [4, 6), ...: a 4 s burst begun at 0 runs
    # over [0, 1), [3, 4), [6, 7) and [9, 10), and ends at 10.
    runner = SimulationRunner(one_server(rate=0.001, cpu=4.0, failures=(1, 2, "resume")).build())
    server = runner.model.servers["srv"]
    server.out_edge = None  # the request is read on the server; it never leaves
    server.finish = lambda request: setattr(request, "plan", None)
    request = RequestState(0.0, runner.model.collector.hops.totals)
    server.receive(request)
    runner.model.env.run(until=8)
    assert server.busy_core_seconds == pytest.approx(3.0)  # cut at 7: the part done
    runner.model.env.run(until=9.999)
    assert request.plan is not None
    runner.model.env.run(until=10.001)
    assert request.plan is None
    assert server.busy_core_seconds == pytest.approx(4.0)


def lossy(**server: Any) -> ScenarioBuilder:
    """A server with RAM, a pool, a CPU step, an I/O wait and a call to a database, that
    fails at 10 s for 5 s and loses its work."""
    return (
        ScenarioBuilder()
        .generator("gen", users=deterministic(200), rpm=60)
        .client("client")
        .server("api", cores=1, db_pool=2, **server)
        .failures(10, 5, work_in_progress="lose")
        .endpoint("/work")
        .ram(64)
        .cpu(exponential(0.004))
        .io("io_db", exponential(0.02))
        .call("db")
        .server("db", cores=1)
        .endpoint("/query")
        .cpu(exponential(0.002))
        .chain("gen", "client", "api", "client", latency=deterministic(0.001))
        .edge("api", "db", latency=deterministic(0.001))
        .edge("db", "api", latency=deterministic(0.001))
        .settings(horizon=20, sample_metrics=["ready_queue_len"])
        .seed(5)
    )


def test_a_failure_that_loses_work_fails_everything_on_the_server_and_frees_it() -> None:
    runner = SimulationRunner(lossy(ram_mb=1024).build())
    env = runner.model.env
    api = runner.model.servers["api"]
    env.run(until=9.999)
    inside = api.in_service
    assert inside > 10  # the server is overloaded: requests wait in every queue
    env.run(until=10.0001)

    assert api.in_service == 0
    assert api.cores.busy == 0
    assert api.cores.queued == 0
    assert api.ram.in_use == 0
    assert api.ram.queued == 0
    assert all(pool.in_use == 0 and pool.queued == 0 for pool in api.pools)
    assert api.calls is not None
    assert api.io_waiting == api.calls.waiting == 0
    assert runner.model.collector.ends[("failed", "api", "server_failure")] >= inside - 2


def test_lost_work_is_counted_failed_at_the_server() -> None:
    results = run_scenario(lossy(ram_mb=1024).build())

    assert results.requests.failed_at["api"] > 0
    assert ended(results, "failed", "api", "server_failure") == results.requests.failed_at["api"]
    assert results.servers["api"].failures == 1
    assert results.servers["api"].availability == pytest.approx(0.75)


def test_a_server_down_may_reject_what_reaches_it() -> None:
    results = run_scenario(one_server(failures=(10, 5, "resume"), when_down="reject").build())

    rejected = ended(results, "rejected", "srv", "server_down")
    # About 20 requests/s over the 20 s down.
    assert rejected == pytest.approx(400, rel=0.2)


def balanced(when_none_up: str | None = None) -> ScenarioBuilder:
    return (
        ScenarioBuilder()
        .generator("gen", users=deterministic(20), rpm=60)
        .client("client")
        .load_balancer("lb", covers=["s1", "s2"], when_none_up=when_none_up)
        .server("s1")
        .endpoint("/work")
        .cpu(exponential(0.01))
        .server("s2")
        .endpoint("/work")
        .cpu(exponential(0.01))
        .edge("gen", "client", latency=deterministic(0.001))
        .edge("client", "lb", latency=deterministic(0.001))
        .edge("lb", "s1", latency=deterministic(0.001))
        .edge("lb", "s2", latency=deterministic(0.001))
        .edge("s1", "client", latency=deterministic(0.001))
        .edge("s2", "client", latency=deterministic(0.001))
        .outage("s1", start=10, end=30)
        .outage("s2", start=20, end=40)
        .settings(horizon=60)
        .seed(4)
    )


def test_every_server_behind_a_balancer_down_holds_requests_until_one_is_back() -> None:
    results = run_scenario(balanced().build())

    per_second = results.throughput.per_second
    assert sum(per_second[21:30]) == 0
    # The ~200 requests held from 20 s to 30 s go to s1 at 30 s, and take 2 s to serve.
    assert sum(per_second[30:33]) > 200 + 40
    assert results.requests.rejected == 0
    assert 9 < results.latency.max < 12


def test_every_server_behind_a_balancer_down_may_reject_at_the_balancer() -> None:
    results = run_scenario(balanced("reject").build())

    assert ended(results, "rejected", "lb", "no_server_up") == pytest.approx(200, rel=0.25)
    assert results.latency.max < 0.1


@pytest.mark.parametrize("when_down", ["wait", "reject"])
def test_an_outage_of_the_only_server_is_accepted(when_down: str) -> None:
    scenario = one_server(when_down=when_down).outage("srv", start=10, end=20).build()
    runner = SimulationRunner(scenario)
    assert runner.model.servers["srv"].door is not None
    results = runner.run()

    assert sum(results.throughput.per_second[11:20]) == 0
    if when_down == "wait":
        assert results.requests.rejected == 0
        assert 9 < results.latency.max < 12
    else:
        assert ended(results, "rejected", "srv", "server_down") == pytest.approx(200, rel=0.25)


def test_failures_need_positive_mean_times() -> None:
    with pytest.raises(ScenarioValidationError) as raised:
        one_server(failures=(exponential(0.0), exponential(1.0), "resume")).build()
    assert "time_to_failure" in str(raised.value)


def test_an_outage_of_a_server_no_balancer_covers_changes_nothing_without_when_down() -> None:
    scenario = one_server().outage("srv", start=10, end=20, event_id="gone").build()
    plain = run_scenario(one_server().build())
    results = run_scenario(scenario)

    assert results.requests == plain.requests  # as in AsyncFlow
    warnings = {w.path: w.message for w in find_warnings(scenario)}
    assert "when_down" in warnings["events[0].target_id"]


def test_failure_times_without_a_distribution_are_warned_about() -> None:
    scenario = one_server(failures=({"mean": 30}, exponential(2.0), "resume")).build()

    paths = [w.path for w in find_warnings(scenario)]

    assert "topology_graph.nodes.servers[0].failures.time_to_failure" in paths
    assert "topology_graph.nodes.servers[0].failures.time_to_repair" not in paths


def test_draining_a_queue_takes_every_live_waiter_and_grants_nothing() -> None:
    cores: CoreSet[str] = CoreSet(1)
    granted: list[str] = []
    waiters = {holder: cores.request(holder, granted.append) for holder in "abcd"}
    cancelled = waiters["c"]
    assert cancelled is not None
    cores.cancel(cancelled)

    assert cores.drain() == ["b", "d"]
    cores.release()
    assert granted == ["a"]
    assert (cores.queued, cores.free) == (0, 1)


def test_failures_that_leave_too_few_core_seconds_are_warned_about() -> None:
    # 20 requests/s of 40 ms: 0.8 core-seconds per second, on one core up 2/3 of the time.
    overloaded = one_server(
        cpu=exponential(0.04), failures=(exponential(10), exponential(5), "resume")
    )
    fine = one_server(cpu=exponential(0.02), failures=(exponential(10), exponential(5), "resume"))

    warned = {w.path: w.message for w in find_warnings(overloaded.build())}
    assert "up 66.7% of the time" in warned["topology_graph.nodes.servers[0].failures"]
    assert "topology_graph.nodes.servers[0].failures" not in {
        w.path for w in find_warnings(fine.build())
    }
