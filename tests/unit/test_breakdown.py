"""The breakdown of the mean response time by hop: parts that sum to the mean latency, each
booked at the place and category where the time went."""

from typing import Any

import pytest

from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.schemas.results import SimulationResults
from support.documents import call, cpu, edge, io, poisson_arrivals, scenario_document, server

NO_SAMPLES = {"enabled_sample_metrics": []}
ENTRY = [
    edge("gen", "client", latency=0.002),
    edge("client", "api", latency=0.003),
    edge("api", "client", latency=0.004),
]
"""gen -> client -> api -> client over fixed links of 2, 3 and 4 ms."""


def document(
    servers: list[dict[str, Any]], edges: list[dict[str, Any]], rate: float = 20.0
) -> dict[str, Any]:
    """Poisson `rate` per second over `ENTRY` into `api`, then `edges` between servers; 120 s."""
    return scenario_document(
        poisson_arrivals(rate), servers, ENTRY + edges, horizon_s=120, settings=NO_SAMPLES
    )


def parts(results: SimulationResults) -> dict[tuple[str, str], float]:
    return {(p.place, p.category): p.mean_s for p in results.breakdown}


def test_without_queueing_each_part_is_the_time_spent_there() -> None:
    # Eight cores for 20 requests/s of 2 ms: a request almost never waits for a core.
    doc = document([server("api", cpu(0.002), io(0.010), cpu(0.001), cpu_cores=8)], [])
    results = run_scenario(parse_scenario(doc), seed=1)
    found = parts(results)
    assert sum(found.values()) == pytest.approx(results.latency.mean, rel=1e-12)
    # Requests in flight at the horizon booked part of their time: a few in 2,400.
    expected = {
        ("gen-client", "network"): 0.002,
        ("client-api", "network"): 0.003,
        ("api", "cpu"): 0.003,
        ("api", "io"): 0.010,
        ("api-client", "network"): 0.004,
    }
    for key, seconds in expected.items():
        assert found[key] == pytest.approx(seconds, rel=0.005), key
    assert found.get(("api", "wait"), 0.0) < 1e-5
    assert [p.place for p in results.breakdown][:2] == ["gen-client", "client-api"]


def test_a_single_call_books_its_hops_where_they_happen() -> None:
    doc = document(
        [server("api", cpu(0.001), call("db")), server("db", io(0.005))],
        [edge("api", "db", latency=0.0005), edge("db", "api", latency=0.0007)],
    )
    results = run_scenario(parse_scenario(doc), seed=2)
    found = parts(results)
    assert found[("db", "io")] == pytest.approx(0.005, rel=0.005)
    assert found[("api-db", "network")] == pytest.approx(0.0005, rel=0.005)
    assert found[("db-api", "network")] == pytest.approx(0.0007, rel=0.005)
    # The caller's wait for the answer is not booked twice.
    assert ("api", "calls") not in found
    assert found.get(("api", "wait"), 0.0) < 1e-5
    assert sum(found.values()) == pytest.approx(results.latency.mean, rel=1e-12)


def test_a_parallel_call_is_booked_as_the_callers_wait_for_the_join() -> None:
    doc = document(
        [
            server("api", call("a", "b")),
            server("a", io(0.004)),
            server("b", io(0.008)),
        ],
        [edge("api", "a"), edge("a", "api"), edge("api", "b"), edge("b", "api")],
    )
    results = run_scenario(parse_scenario(doc), seed=3)
    found = parts(results)
    # The slower branch: two 1 ms links and 8 ms of I/O.
    assert found[("api", "calls")] == pytest.approx(0.010, rel=0.005)
    assert not {place for place, _ in found} & {"a", "b", "api-a", "b-api"}
    # The branches still load their servers: their I/O is not in the breakdown, but
    # their CPU would count in utilisation.
    assert results.calls["api:/#0->a"].answered > 0


def test_pool_waits_and_core_waits_are_parts_of_their_own() -> None:
    doc = document([server("api", cpu(0.002), io(0.040), db_connection_pool=1)], [], rate=20.0)
    results = run_scenario(parse_scenario(doc), seed=4)
    found = parts(results)
    # One connection held 40 ms at 20/s: 80% busy, an M/D/1 on the pool.
    assert found[("api", "pool_wait")] > 0.05
    assert found[("api", "io")] == pytest.approx(0.040, rel=0.01)
    assert sum(found.values()) == pytest.approx(results.latency.mean, rel=1e-12)


def test_losses_leave_the_sum_exact() -> None:
    doc = document([server("api", cpu(0.002))], [])
    for e in doc["topology_graph"]["edges"]:
        e["dropout_rate"] = 0.2
    results = run_scenario(parse_scenario(doc), seed=5)
    assert results.requests.dropped > 0
    assert sum(p.mean_s for p in results.breakdown) == pytest.approx(
        results.latency.mean, rel=1e-12
    )


def test_no_completed_request_means_no_breakdown() -> None:
    doc = document([server("api", cpu(0.002))], [])
    doc["sim_settings"]["total_simulation_time"] = 5
    doc["topology_graph"]["edges"][2]["latency"]["mean"] = 10.0
    results = SimulationRunner(parse_scenario(doc), seed=6).run()
    assert results.requests.completed == 0
    assert results.breakdown == []
