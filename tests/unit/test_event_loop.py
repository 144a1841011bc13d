"""A server's event-loop cost: its validation, its batches, and its exact limiting cases.

`per_iteration_s` is paid once per loop iteration by the burst that opens it, and the
bursts waiting when it polled join it; `per_callback_s` is paid by every burst
(docs/semantics.md, "Event-loop cost"). With deterministic bursts and links every figure
below is exact.
"""

from typing import Any

import pytest

from asyncflow_backend.builder import BuilderUsageError, ScenarioBuilder
from asyncflow_backend.resources import CoreSet
from asyncflow_backend.runtime.actors.event_loop import PolledCores
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from support.scenarios import cpu_station, looped_server

BURST_S = 0.010
ITERATION_S = 0.004
CALLBACK_S = 0.001


def document(**event_loop: Any) -> dict[str, Any]:
    scenario = cpu_station(rate=1, cpu=BURST_S, horizon_s=60, seed=1).to_dict()
    scenario["topology_graph"]["nodes"]["servers"][0]["event_loop"] = event_loop
    return scenario


def problem(**event_loop: Any) -> tuple[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document(**event_loop))
    (found,) = caught.value.problems
    return found.path, found.message


@pytest.mark.parametrize(
    ("fields", "path", "says"),
    [
        ({"per_iteration_s": -0.001}, "per_iteration_s", "greater than or equal to 0"),
        ({"per_callback_s": 2.0}, "per_callback_s", "less than or equal to 1"),
        ({"per_iteration_s": float("inf")}, "per_iteration_s", "finite"),
        ({"per_iteration_s": "0.001"}, "per_iteration_s", "number"),
        ({"per_wakeup_s": 0.001}, "per_wakeup_s", "not permitted"),
        ({}, "", "needs per_iteration_s, per_callback_s or both"),
        ({"per_iteration_s": 0, "per_callback_s": 0}, "", "above 0"),
    ],
)
def test_bad_costs_are_errors_naming_the_field(
    fields: dict[str, Any], path: str, says: str
) -> None:
    where, message = problem(**fields)

    expected = "topology_graph.nodes.servers[0].event_loop"
    assert where == (f"{expected}.{path}" if path else expected)
    assert says in message


def test_one_cost_alone_is_enough() -> None:
    scenario = parse_scenario(document(per_callback_s=0.0002))

    loop = scenario.topology_graph.nodes.servers[0].event_loop
    assert loop is not None
    assert (loop.per_iteration_s, loop.per_callback_s) == (0.0, 0.0002)


def test_the_builder_writes_the_last_servers_event_loop() -> None:
    built = cpu_station(rate=1, cpu=BURST_S, horizon_s=60).event_loop(per_iteration_s=0.001)

    server = built.to_dict()["topology_graph"]["nodes"]["servers"][0]
    assert server["event_loop"] == {"per_iteration_s": 0.001, "per_callback_s": 0.0}
    with pytest.raises(BuilderUsageError, match="needs a server"):
        ScenarioBuilder().event_loop(per_callback_s=0.001)


def test_a_server_without_it_keeps_the_plain_cores_and_grant() -> None:
    runner = SimulationRunner(cpu_station(rate=1, cpu=BURST_S, horizon_s=60).build(), seed=1)

    server = runner.model.servers["srv"]
    assert type(server.cores) is CoreSet
    assert server.take_core == server._take_core


def holders(names: str) -> list[list[str]]:
    """One holder per letter; lists, since a resource finds a holder by identity."""
    return [[name] for name in names]


def granting(cores: PolledCores[list[str]]) -> tuple[list[tuple[str, float]], Any]:
    """A grant callback that notes each holder and what its grant was charged."""
    charged: list[tuple[str, float]] = []

    def grant(holder: list[str]) -> None:
        charged.append((holder[0], cores.charge()))

    return charged, grant


def test_a_poll_makes_ready_exactly_the_bursts_waiting_then() -> None:
    cores: PolledCores[list[str]] = PolledCores(1, ITERATION_S, CALLBACK_S)
    charged, grant = granting(cores)
    a, b, c, d = holders("abcd")

    for holder in (a, b, c):
        cores.request(holder, grant)  # a opens an iteration on the idle core; b, c wait
    cores.release()  # a ends: b opens one, whose poll finds c
    cores.request(d, grant)  # d comes after that poll
    cores.release()  # b ends: c is in b's batch
    cores.release()  # c ends: d opens a new iteration
    cores.release()

    opened = ITERATION_S + CALLBACK_S
    assert charged == [("a", opened), ("b", opened), ("c", CALLBACK_S), ("d", opened)]
    assert (cores.iterations, cores.callbacks) == (3, 4)


def test_a_withdrawn_burst_leaves_its_batch() -> None:
    cores: PolledCores[list[str]] = PolledCores(1, ITERATION_S, CALLBACK_S)
    charged, grant = granting(cores)
    a, b, c, d, e = holders("abcde")

    for holder in (a, b, c, d):
        cores.request(holder, grant)
    cores.release()  # b opens an iteration; its poll makes c and d ready
    assert cores.withdraw(c)
    cores.request(e, grant)  # after the poll
    for _ in range(3):
        cores.release()

    opened = ITERATION_S + CALLBACK_S
    assert charged == [("a", opened), ("b", opened), ("d", CALLBACK_S), ("e", opened)]


def test_a_drained_queue_leaves_no_batch() -> None:
    """A server that fails and loses its work drains its queue: what comes next polls anew."""
    cores: PolledCores[list[str]] = PolledCores(1, ITERATION_S, CALLBACK_S)
    charged, grant = granting(cores)
    a, b, c, d = holders("abcd")
    for holder in (a, b, c):
        cores.request(holder, grant)
    cores.release()  # b opens an iteration; its poll makes c ready

    assert cores.drain() == [c]
    cores.request(d, grant)
    cores.release()

    assert charged[-1] == ("d", ITERATION_S + CALLBACK_S)


def run(builder: ScenarioBuilder) -> tuple[SimulationRunner, Any]:
    runner = SimulationRunner(builder.build(), seed=7)
    return runner, runner.run()


def test_requests_that_never_overlap_each_pay_one_iteration_and_one_callback() -> None:
    """(a) One user thinking 1 s between requests: every request finds the loop idle."""
    builder = looped_server(
        cpu_s=BURST_S,
        per_iteration_s=ITERATION_S,
        per_callback_s=CALLBACK_S,
        io_s=0.02,
        horizon_s=30,
    ).closed_users("gen", 1, think_time=1.0)

    runner, results = run(builder)

    server = runner.model.servers["srv"]
    count = results.requests.completed
    assert count > 25
    per_request = BURST_S + ITERATION_S + CALLBACK_S
    assert server.cores.iterations == server.cores.callbacks == count
    assert server.busy_core_seconds == pytest.approx(count * per_request, rel=1e-12)
    latency = results.servers["srv"].latency
    assert latency.count == count
    assert latency.mean == pytest.approx(per_request + 0.02, rel=1e-9)
    assert latency.max == pytest.approx(latency.mean, rel=1e-9)


def test_a_batch_that_waited_shares_one_iteration() -> None:
    """(b) Eight users send at the same instant: the first wakes the idle loop alone, the
    seven queued behind it are made ready by the next poll and share its iteration."""
    users = 8
    builder = looped_server(
        cpu_s=BURST_S, per_iteration_s=ITERATION_S, per_callback_s=CALLBACK_S, horizon_s=15
    ).closed_users("gen", users, think_time=10.0)

    runner, results = run(builder)

    cores = runner.model.servers["srv"].cores
    assert (cores.iterations, cores.callbacks) == (2, users)
    busy = runner.model.servers["srv"].busy_core_seconds
    assert busy == pytest.approx(2 * ITERATION_S + users * (CALLBACK_S + BURST_S), rel=1e-12)
    # The first ends after one iteration and its burst; the k-th (k >= 2) after two
    # iterations and k bursts.
    ends = [ITERATION_S + CALLBACK_S + BURST_S] + [
        2 * ITERATION_S + k * (CALLBACK_S + BURST_S) for k in range(2, users + 1)
    ]
    latency = results.servers["srv"].latency
    assert latency.mean == pytest.approx(sum(ends) / users, rel=1e-9)
    assert latency.max == pytest.approx(ends[-1], rel=1e-9)


def test_busy_time_is_iterations_and_callbacks_at_saturation() -> None:
    """(b) At saturation: busy core time = per_iteration_s x iterations + (per_callback_s +
    burst) x bursts, and iterations are far fewer than bursts."""
    builder = looped_server(
        cpu_s=BURST_S, per_iteration_s=ITERATION_S, per_callback_s=CALLBACK_S, horizon_s=60
    ).closed_users("gen", 40, think_time=0.05)

    runner, _ = run(builder)

    server = runner.model.servers["srv"]
    cores = server.cores
    assert isinstance(cores, PolledCores)
    assert server.busy_core_seconds == pytest.approx(
        ITERATION_S * cores.iterations + (CALLBACK_S + BURST_S) * cores.callbacks, rel=1e-9
    )
    assert cores.callbacks > 5_000
    assert cores.iterations < cores.callbacks / 10


def test_requests_withdrawn_from_the_ready_queue_leave_the_identity_whole() -> None:
    """Overloaded, with a client timeout that cancels: requests leave the ready queue (and
    batches) while they wait, and busy time is still iterations plus callbacks plus bursts."""
    builder = (
        looped_server(
            cpu_s=BURST_S, per_iteration_s=ITERATION_S, per_callback_s=CALLBACK_S, horizon_s=30
        )
        .arrival_rate("gen", "steps", [(0, 120)])
        .timeout(0.05, on_timeout="cancel")
    )

    runner, results = run(builder)

    server = runner.model.servers["srv"]
    cores = server.cores
    assert isinstance(cores, PolledCores)
    assert results.requests.timed_out > 100
    assert server.busy_core_seconds == pytest.approx(
        ITERATION_S * cores.iterations + (CALLBACK_S + BURST_S) * cores.callbacks, rel=1e-9
    )
    assert 0 < cores.iterations < cores.callbacks
