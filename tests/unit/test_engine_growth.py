"""The reshaped engine: pools, balancing policies, per-server results, build errors, and
grant chains that loop instead of recursing."""

from typing import Any

import pytest

from asyncflow_backend.runtime.actors import BuildError
from asyncflow_backend.runtime.model import SimulationModel
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.samplers import RandomStreams
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.loading import ScenarioValidationError
from support.documents import cpu, endpoint, io, poisson_arrivals, ram, server
from support.topologies import balanced

NO_SAMPLES = {"enabled_sample_metrics": []}


def behind_balancer(
    algorithm: str,
    *,
    servers: int = 2,
    rate: float = 100.0,
    cpu_time: float | dict[str, Any] = 0.001,
    horizon: float = 60.0,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Poisson `rate` into an `algorithm` balancer over `servers` servers of one CPU step."""
    return balanced(
        poisson_arrivals(rate),
        [server(f"srv-{k + 1}", cpu(cpu_time)) for k in range(servers)],
        horizon_s=horizon,
        algorithm=algorithm,
        balancer_options=None if weights is None else {"weights": weights},
        settings=NO_SAMPLES,
    )


def served(document: dict[str, Any], seed: int = 1) -> list[int]:
    results = run_scenario(parse_scenario(document), seed=seed)
    return [s.latency.count if s.latency else 0 for s in results.servers.values()]


def test_weighted_round_robin_gives_each_server_its_weight() -> None:
    counts = served(
        behind_balancer("weighted_round_robin", servers=3, weights={"srv-1": 3, "srv-2": 2})
    )
    total = sum(counts)
    # Smooth weighted round robin is exact up to one cycle of 3 + 2 + 1 picks.
    for count, weight in zip(counts, (3, 2, 1), strict=True):
        assert abs(count - total * weight / 6) <= 6


def test_least_connection_breaks_ties_in_turn() -> None:
    """Servers that are always idle tie every time: they must share the traffic evenly."""
    counts = served(behind_balancer("least_connection", servers=3, rate=10.0, cpu_time=0.0001))
    assert max(counts) - min(counts) <= 1


def test_random_spreads_evenly_and_power_of_two_beats_it() -> None:
    heavy = {"rate": 170.0, "cpu_time": {"mean": 0.01, "distribution": "exponential"}}
    random_counts = served(behind_balancer("random", horizon=300.0, **heavy))
    total = sum(random_counts)
    assert abs(random_counts[0] - total / 2) < 4 * (total / 4) ** 0.5

    def mean_latency(policy: str) -> float:
        results = run_scenario(
            parse_scenario(behind_balancer(policy, horizon=300.0, **heavy)), seed=2
        )
        assert results.latency.mean is not None
        return results.latency.mean

    # At 85% load, two choices cut the mean response time well below random dispatch
    # (M/M/1 at 85%: 67 ms; with two servers both are always drawn: join the shorter queue).
    assert mean_latency("power_of_two_choices") < 0.75 * mean_latency("random")


def test_weights_need_weighted_round_robin_and_covered_servers() -> None:
    document = behind_balancer("round_robin", weights={"srv-9": 2})
    with pytest.raises(ScenarioValidationError) as caught:
        SimulationRunner(parse_scenario(document))
    paths = {p.path for p in caught.value.problems}
    assert "topology_graph.nodes.load_balancer.weights" in paths
    assert "topology_graph.nodes.load_balancer.weights.srv-9" in paths


def ram_chain() -> dict[str, Any]:
    """256 MB of RAM at 200 requests/s: 1% of requests take it all and then wait 5 s of
    I/O; the rest are a single 1 MB RAM step, so each is done the instant it is granted."""
    document = behind_balancer("round_robin", servers=1, rate=200.0, horizon=120.0)
    server = document["topology_graph"]["nodes"]["servers"][0]
    server["server_resources"] = {"ram_mb": 256}
    server["endpoints"] = [
        endpoint("/hog", ram(256), io(5.0, kind="io_wait"), probability=0.01),
        endpoint("/tiny", ram(1), probability=0.99),
    ]
    return document


def test_a_ram_grant_chain_does_not_recurse() -> None:
    """At this seed and horizon one chain is long enough to pass Python's recursion limit
    if each grant nests (the engine raised RecursionError here before grants looped)."""
    results = run_scenario(parse_scenario(ram_chain()), seed=7)
    stats = results.servers["srv-1"]
    # Each hog holds all the RAM for 5 s, so the tiny requests queue behind it by the
    # thousand and are granted in one chain when it lets go.
    assert results.requests.completed > 500
    assert stats.endpoints["/tiny"].count > 50 * stats.endpoints["/hog"].count > 0
    assert stats.ram_mb == 256


def test_pools_are_reported_per_server_and_named_pools_are_held() -> None:
    document = behind_balancer("round_robin", servers=1, rate=50.0, horizon=60.0)
    server = document["topology_graph"]["nodes"]["servers"][0]
    server["server_resources"] = {"db_connection_pool": 2, "connection_pools": {"cache": 1}}
    server["endpoints"][0]["steps"] += [io(0.01), io(0.015, kind="io_cache", pool="cache")]
    document["sim_settings"]["enabled_sample_metrics"] = ["pool_in_use", "pool_waiting"]
    results = run_scenario(parse_scenario(document), seed=3)

    assert set(results.pools) == {"srv-1:db", "srv-1:cache"}
    db, cache = results.pools["srv-1:db"], results.pools["srv-1:cache"]
    assert (db.size, cache.size) == (2, 1)
    assert db.acquired >= cache.acquired >= results.requests.completed > 2500
    # 50/s holding 15 ms of a single connection: 75% busy, so some wait.
    assert cache.utilisation == pytest.approx(0.75, abs=0.05)
    assert cache.wait_mean_s is not None
    assert cache.wait_mean_s > 0
    assert db.utilisation == pytest.approx(0.25, abs=0.03)
    assert set(results.time_series.series["pool_in_use"]) == {"srv-1:db", "srv-1:cache"}


def test_a_step_naming_an_unknown_pool_is_refused_with_its_path() -> None:
    document = behind_balancer("round_robin", servers=1)
    steps = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    steps.append(io(0.01, pool="nope"))
    with pytest.raises(ScenarioValidationError) as caught:
        SimulationRunner(parse_scenario(document))
    problem = caught.value.problems[0]
    assert problem.path == "topology_graph.nodes.servers[0].endpoints[0].steps[1].pool"
    assert "no pool 'nope'" in problem.message


def test_only_io_steps_hold_pools() -> None:
    document = behind_balancer("round_robin", servers=1)
    steps = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    steps[0]["pool"] = "db"
    with pytest.raises(ScenarioValidationError, match="only an I/O or call step"):
        parse_scenario(document)


def test_a_connection_declared_and_never_made_is_a_build_error() -> None:
    """Validation refuses this first; the builder still names the gap on its own."""
    document = behind_balancer("round_robin")
    document["topology_graph"]["edges"] = [
        e for e in document["topology_graph"]["edges"] if e["id"] != "lb-srv-2"
    ]
    scenario = Scenario.model_validate(document)  # the models alone: no cross-section checks
    with pytest.raises(BuildError, match="load balancer 'lb' has no edge to 'srv-2'"):
        SimulationModel.build(scenario, RandomStreams(1))


def test_per_endpoint_times_add_up_to_the_server() -> None:
    document = ram_chain()
    results = run_scenario(parse_scenario(document), seed=9)
    stats = results.servers["srv-1"]
    assert stats.latency is not None
    assert stats.latency.count == sum(e.count for e in stats.endpoints.values())
    assert stats.endpoints["/hog"].mean is not None
    assert stats.endpoints["/hog"].mean >= 5.0
