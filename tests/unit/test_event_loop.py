"""A server's event-loop cost: its validation, its charges, and its exact limiting cases.

`per_wakeup_s` is paid by a burst that finds its core idle (it wakes the loop); a burst
handed the core from the ready queue runs in the busy loop without it; `per_callback_s` is
paid by every burst (docs/semantics.md, "Event-loop cost"). With deterministic bursts and
links every figure below is exact.
"""

from typing import Any

import pytest

from asyncflow_backend.builder import BuilderUsageError, ScenarioBuilder
from asyncflow_backend.resources import CoreSet
from asyncflow_backend.runtime.actors.event_loop import WakingCores
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from support.scenarios import cpu_station, looped_server

BURST_S = 0.010
WAKEUP_S = 0.004
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
        ({"per_wakeup_s": -0.001}, "per_wakeup_s", "greater than or equal to 0"),
        ({"per_callback_s": 2.0}, "per_callback_s", "less than or equal to 1"),
        ({"per_wakeup_s": float("inf")}, "per_wakeup_s", "finite"),
        ({"per_wakeup_s": "0.001"}, "per_wakeup_s", "number"),
        ({"per_wakeup": 0.001}, "per_wakeup", "not permitted"),
        ({}, "", "needs per_wakeup_s, per_callback_s or both"),
        ({"per_wakeup_s": 0, "per_callback_s": 0}, "", "above 0"),
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
    assert (loop.per_wakeup_s, loop.per_callback_s) == (0.0, 0.0002)


def test_the_builder_writes_the_last_servers_event_loop() -> None:
    built = cpu_station(rate=1, cpu=BURST_S, horizon_s=60).event_loop(per_wakeup_s=0.001)

    server = built.to_dict()["topology_graph"]["nodes"]["servers"][0]
    assert server["event_loop"] == {"per_wakeup_s": 0.001, "per_callback_s": 0.0}
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


def granting(cores: WakingCores[list[str]]) -> tuple[list[tuple[str, float]], Any]:
    """A grant callback that notes each holder and what its grant was charged."""
    charged: list[tuple[str, float]] = []

    def grant(holder: list[str]) -> None:
        charged.append((holder[0], cores.charge()))

    return charged, grant


def test_only_a_burst_that_finds_the_core_idle_pays_the_wake_up() -> None:
    cores: WakingCores[list[str]] = WakingCores(1, WAKEUP_S, CALLBACK_S)
    charged, grant = granting(cores)
    a, b, c, d = holders("abcd")

    for holder in (a, b, c):
        cores.request(holder, grant)  # a wakes the idle loop; b and c wait
    cores.release()  # a ends: the busy loop takes b
    cores.release()  # b ends: c
    cores.release()  # c ends: the loop goes idle
    cores.request(d, grant)  # d wakes it again
    cores.release()

    woke = WAKEUP_S + CALLBACK_S
    assert charged == [("a", woke), ("b", CALLBACK_S), ("c", CALLBACK_S), ("d", woke)]
    assert (cores.wakeups, cores.callbacks) == (2, 4)


def test_a_withdrawn_burst_is_never_charged() -> None:
    cores: WakingCores[list[str]] = WakingCores(1, WAKEUP_S, CALLBACK_S)
    charged, grant = granting(cores)
    a, b, c = holders("abc")

    for holder in (a, b, c):
        cores.request(holder, grant)
    assert cores.withdraw(b)
    cores.release()  # a ends: c, handed over
    cores.release()

    assert charged == [("a", WAKEUP_S + CALLBACK_S), ("c", CALLBACK_S)]


def test_each_idle_core_of_several_wakes_for_its_first_burst() -> None:
    cores: WakingCores[list[str]] = WakingCores(2, WAKEUP_S, CALLBACK_S)
    charged, grant = granting(cores)
    a, b, c = holders("abc")

    for holder in (a, b, c):
        cores.request(holder, grant)  # a and b wake the two loops; c waits
    cores.release()

    woke = WAKEUP_S + CALLBACK_S
    assert charged == [("a", woke), ("b", woke), ("c", CALLBACK_S)]


def run(builder: ScenarioBuilder) -> tuple[SimulationRunner, Any]:
    runner = SimulationRunner(builder.build(), seed=7)
    return runner, runner.run()


def test_requests_that_never_overlap_each_pay_one_wake_up_and_one_callback() -> None:
    """(a) One user thinking 1 s between requests: every request finds the loop idle."""
    builder = looped_server(
        cpu_s=BURST_S,
        per_wakeup_s=WAKEUP_S,
        per_callback_s=CALLBACK_S,
        io_s=0.02,
        horizon_s=30,
    ).closed_users("gen", 1, think_time=1.0)

    runner, results = run(builder)

    server = runner.model.servers["srv"]
    count = results.requests.completed
    assert count > 25
    per_request = BURST_S + WAKEUP_S + CALLBACK_S
    assert server.cores.wakeups == server.cores.callbacks == count
    assert server.busy_core_seconds == pytest.approx(count * per_request, rel=1e-12)
    latency = results.servers["srv"].latency
    assert latency.count == count
    assert latency.mean == pytest.approx(per_request + 0.02, rel=1e-9)
    assert latency.max == pytest.approx(latency.mean, rel=1e-9)


def test_a_busy_spell_shares_one_wake_up() -> None:
    """(b) Eight users send at the same instant: the first wakes the idle loop, the seven
    queued behind it run in the busy loop without waking it again."""
    users = 8
    builder = looped_server(
        cpu_s=BURST_S, per_wakeup_s=WAKEUP_S, per_callback_s=CALLBACK_S, horizon_s=15
    ).closed_users("gen", users, think_time=10.0)

    runner, results = run(builder)

    cores = runner.model.servers["srv"].cores
    assert (cores.wakeups, cores.callbacks) == (1, users)
    busy = runner.model.servers["srv"].busy_core_seconds
    assert busy == pytest.approx(WAKEUP_S + users * (CALLBACK_S + BURST_S), rel=1e-12)
    # The k-th ends after the wake-up and k bursts.
    ends = [WAKEUP_S + k * (CALLBACK_S + BURST_S) for k in range(1, users + 1)]
    latency = results.servers["srv"].latency
    assert latency.mean == pytest.approx(sum(ends) / users, rel=1e-9)
    assert latency.max == pytest.approx(ends[-1], rel=1e-9)


def test_busy_time_is_wake_ups_and_callbacks_at_saturation() -> None:
    """(b) At saturation: busy core time = per_wakeup_s x wake-ups + (per_callback_s +
    burst) x bursts, and wake-ups are far fewer than bursts."""
    builder = looped_server(
        cpu_s=BURST_S, per_wakeup_s=WAKEUP_S, per_callback_s=CALLBACK_S, horizon_s=60
    ).closed_users("gen", 40, think_time=0.05)

    runner, _ = run(builder)

    server = runner.model.servers["srv"]
    cores = server.cores
    assert isinstance(cores, WakingCores)
    assert server.busy_core_seconds == pytest.approx(
        WAKEUP_S * cores.wakeups + (CALLBACK_S + BURST_S) * cores.callbacks, rel=1e-9
    )
    assert cores.callbacks > 5_000
    assert cores.wakeups < cores.callbacks / 10


def test_requests_withdrawn_from_the_ready_queue_leave_the_identity_whole() -> None:
    """Overloaded, with a client timeout that cancels: requests leave the ready queue while
    they wait, and busy time is still wake-ups plus callbacks plus bursts."""
    builder = (
        looped_server(cpu_s=BURST_S, per_wakeup_s=WAKEUP_S, per_callback_s=CALLBACK_S, horizon_s=30)
        .arrival_rate("gen", "steps", [(0, 120)])
        .timeout(0.05, on_timeout="cancel")
    )

    runner, results = run(builder)

    server = runner.model.servers["srv"]
    cores = server.cores
    assert isinstance(cores, WakingCores)
    assert results.requests.timed_out > 100
    assert server.busy_core_seconds == pytest.approx(
        WAKEUP_S * cores.wakeups + (CALLBACK_S + BURST_S) * cores.callbacks, rel=1e-9
    )
    assert 0 < cores.wakeups < cores.callbacks
