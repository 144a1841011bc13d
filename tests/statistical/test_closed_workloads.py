"""Closed workloads against the exact theory of closed queueing networks.

N users with exponential think times in front of one exponential server are
the machine-repairman model (closed M/M/1//N), solved exactly from its
birth-death chain; a server whose every request calls a second server (both
exponential, the caller's core free while it waits) is a closed network of
two stations, solved by exact mean value analysis. Links are a fixed 10⁻⁶ s,
taken out of the response time exactly.
"""

from typing import Any

import numpy as np
import pytest
from queue_models import (
    EDGE_LATENCY_S,
    ClosedMetrics,
    assert_agrees,
    estimate,
    exact_mva,
    machine_repairman,
    one_server,
    over_fixed_links,
    simulate,
)

from asyncflow_backend.schemas import Scenario
from support.documents import call, cpu, exponential, server

pytestmark = pytest.mark.statistical


def closed_users(users: int, think_s: float) -> dict[str, Any]:
    return {"id": "gen", "users": users, "think_time": exponential(think_s)}


def repairman(users: int, think_s: float, service_s: float, horizon_s: float) -> Scenario:
    return one_server(
        0,
        [cpu(exponential(service_s))],
        horizon_s=horizon_s,
        resources={},
        metrics=["ready_queue_len"],
        workload=closed_users(users, think_s),
    )


def two_stations(users: int, think_s: float, api_s: float, db_s: float, horizon_s: float):
    servers = [
        server("api", cpu(exponential(api_s)), call("db")),
        server("db", cpu(exponential(db_s)), endpoint_name="/q"),
    ]
    return over_fixed_links(
        closed_users(users, think_s),
        servers,
        horizon_s=horizon_s,
        metrics=["ready_queue_len"],
        links=[("api", "db"), ("db", "api")],
    )


def assert_closed_agrees(
    scenario: Scenario,
    seed: int,
    links: int,
    exact: ClosedMetrics,
    servers: list[str],
    demands: list[float],
) -> None:
    run = simulate(scenario, seed)
    assert run.results.requests.dropped == 0
    response = estimate(run.latencies - links * EDGE_LATENCY_S)
    assert_agrees(response, exact.response, "R")
    per_second = np.asarray(run.results.throughput.per_second, dtype=np.float64)
    throughput = estimate(per_second)
    assert_agrees(throughput, exact.throughput, "X")
    for node, demand, utilisation in zip(servers, demands, exact.utilisations, strict=True):
        simulated = run.results.servers[node].cpu_utilisation
        bound = 3 * throughput.standard_error * demand + 0.005
        print(f"U {node}: simulated {simulated:.4f}, theory {utilisation:.4f}, bound {bound:.4f}")
        assert abs(simulated - utilisation) <= bound
    closed = run.results.closed
    assert closed is not None
    assert closed.users_mean == scenario.rqs_input.users
    assert closed.interactive_law_rps == pytest.approx(closed.throughput_rps, rel=0.02)
    print(
        f"R {response.mean:.5f} vs {exact.response:.5f}; X {throughput.mean:.4f} vs "
        f"{exact.throughput:.4f}; law N/(R+Z) {closed.interactive_law_rps:.4f}"
    )


def test_the_machine_repairman_model_matches_its_birth_death_chain() -> None:
    users, think_s, service_s = 8, 1.0, 0.1
    exact = machine_repairman(users, think_s, service_s)
    scenario = repairman(users, think_s, service_s, 10000.0)
    assert_closed_agrees(scenario, 1401, 3, exact, ["srv"], [service_s])


def test_a_closed_network_of_two_stations_matches_exact_mva() -> None:
    users, think_s, api_s, db_s = 6, 0.5, 0.04, 0.07
    exact = exact_mva(users, think_s, [api_s, db_s])
    scenario = two_stations(users, think_s, api_s, db_s, 6000.0)
    assert_closed_agrees(scenario, 1402, 5, exact, ["api", "db"], [api_s, db_s])


def test_mva_of_one_station_is_the_machine_repairman_model() -> None:
    for users in (1, 3, 10):
        mva = exact_mva(users, 2.0, [0.3])
        chain = machine_repairman(users, 2.0, 0.3)
        assert mva.throughput == pytest.approx(chain.throughput, rel=1e-12)
        assert mva.response == pytest.approx(chain.response, rel=1e-12)
