"""The harness's small parts: /proc readings, core plans, specs and the services' start order."""

import asyncio
import os
import time

import numpy as np
import pytest

from benchmarks.real_system.app import burn_cpu, timer
from benchmarks.real_system.cpu import (
    cpu_per_request_s,
    parse_stat_cpu_ticks,
    parse_stat_ppid,
    parse_voluntary_switches,
    tree_cpu_s,
    tree_wakeups,
)
from benchmarks.real_system.pinning import pinned, plan_cores
from benchmarks.real_system.services import call_order, server_command
from benchmarks.real_system.spec import (
    Call,
    Cpu,
    Duration,
    ServiceSpec,
    TopologySpec,
    service_from_json,
    service_to_json,
)
from benchmarks.real_system.topologies import TOPOLOGIES, topology

# A stat line whose command name holds spaces and a parenthesis (proc(5): utime is field 14).
STAT = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0 99"


def test_cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() -> None:
    assert parse_stat_cpu_ticks(STAT) == 280
    assert parse_stat_ppid(STAT) == 17
    with pytest.raises(ValueError, match="no command name"):
        parse_stat_cpu_ticks("garbage")


def test_this_process_cpu_grows_while_it_burns_cpu() -> None:
    before = tree_cpu_s([os.getpid()])

    burned = burn_cpu(0.05)

    assert burned >= 0.05
    assert tree_cpu_s([os.getpid()]) >= before + 0.03  # ticks of 10 ms: allow one each side


def test_cpu_per_request_divides_the_difference() -> None:
    assert cpu_per_request_s(1.0, 1.5, 100) == pytest.approx(0.005)
    with pytest.raises(ValueError, match="at least one request"):
        cpu_per_request_s(1.0, 1.5, 0)
    with pytest.raises(ValueError, match="backwards"):
        cpu_per_request_s(2.0, 1.5, 10)


def test_the_servers_get_the_first_cores_and_the_load_the_rest() -> None:
    plan = plan_cores(frozenset({0, 1, 2, 3}), server_cores=2)

    assert plan.server_cores == frozenset({0, 1})
    assert plan.load_cores == frozenset({2, 3})
    assert plan.describe() == "servers on cores [0, 1], load generator on cores [2, 3]"
    with pytest.raises(ValueError, match="at least one for the load generator"):
        plan_cores(frozenset({0}), server_cores=1)


def test_a_pinned_command_runs_under_taskset() -> None:
    assert pinned(["python", "-V"], frozenset({3, 1})) == [
        "taskset", "--cpu-list", "1,3", "python", "-V",
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_every_service_survives_the_trip_through_json(name: str) -> None:
    for service in topology(name).services:
        assert service_from_json(service_to_json(service)) == service


def test_durations_draw_their_distribution() -> None:
    rng = np.random.default_rng(1)

    assert Duration(0.01, "deterministic").draw(rng) == 0.01
    uniform = [Duration(0.01, "uniform").draw(rng) for _ in range(2_000)]
    assert min(uniform) >= 0.0
    assert max(uniform) <= 0.02
    with pytest.raises(ValueError, match="mean must be > 0"):
        Duration(0.0)


def test_several_workers_need_gunicorn() -> None:
    with pytest.raises(ValueError, match="gunicorn"):
        ServiceSpec("api", (Cpu(Duration(0.001)),), workers=2)
    command = server_command("m:f", 8000, "gunicorn", 2)
    assert command[command.index("--workers") + 1] == "2"
    assert "uvicorn.workers.UvicornWorker" in command
    assert "uvloop" in server_command("m:f", 8000, "uvicorn", 1)


def test_called_services_start_before_their_callers() -> None:
    order = [service.name for service in call_order(topology("cached_call"))]

    assert order == ["store", "api"]


def test_calls_in_a_cycle_or_to_nowhere_are_refused() -> None:
    cycle = TopologySpec(
        "c", "", (ServiceSpec("a", (Call("b"),)), ServiceSpec("b", (Call("a"),))), entry="a"
    )
    nowhere = TopologySpec("n", "", (ServiceSpec("a", (Call("x"),)),), entry="a")

    with pytest.raises(ValueError, match="cycle"):
        call_order(cycle)
    with pytest.raises(ValueError, match="unknown services"):
        call_order(nowhere)


def test_an_unknown_topology_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: cpu_io"):
        topology("nope")


def test_wakeups_are_the_voluntary_context_switches_of_the_status() -> None:
    status = "Name:\tpython\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n"

    assert parse_voluntary_switches(status) == 1234
    with pytest.raises(ValueError, match="voluntary_ctxt_switches"):
        parse_voluntary_switches("Name:\tpython\n")


def test_a_process_that_sleeps_wakes_up() -> None:
    before = tree_wakeups([os.getpid()])

    for _ in range(5):
        time.sleep(0.001)  # each sleep blocks the thread: one voluntary switch at least

    assert tree_wakeups([os.getpid()]) >= before + 5


async def test_a_timer_returns_when_it_fired_not_when_the_coroutine_resumed() -> None:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    # The loop first runs a 10 ms burst; by then the timer (4 ms) and a 20 ms burst due at
    # 5 ms are both overdue and run in the same pass, the timer first. The coroutine resumes
    # only in the next pass, after the 20 ms burst: that wait is not part of the timer's time.
    loop.call_soon(burn_cpu, 0.010)
    loop.call_later(0.005, burn_cpu, 0.020)

    fired = await timer(0.004)
    resumed = time.perf_counter()

    assert fired - started >= 0.004
    assert resumed - fired >= 0.020
