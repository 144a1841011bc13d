"""Several workload classes in one scenario: each its own generator, workload and endpoint
mix; results broken down by class."""

from typing import Any

import pytest

from asyncflow_backend.builder import BuilderUsageError, ScenarioBuilder, exponential
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits


def shop() -> ScenarioBuilder:
    """Browsers on a daily-ish ramp reading pages; a closed fleet of batch jobs exporting."""
    return (
        ScenarioBuilder()
        .arrival_rate("browsers", "ramp", [(0, 5), (100, 15)])
        .endpoint_mix("api", {"/page": 1})
        .closed_users("batch", 3, think_time=exponential(0.5))
        .endpoint_mix("api", {"/export": 1})
        .client("client")
        .server("api", cores=2)
        .endpoint("/page")
        .cpu(exponential(0.005))
        .endpoint("/export")
        .cpu(exponential(0.05))
        .edge("browsers", "client", latency=exponential(0.001), dropout=0.0)
        .edge("batch", "client", latency=exponential(0.001), dropout=0.0)
        .chain("client", "api", "client", latency=exponential(0.001), dropout=0.0)
        .settings(horizon=100, sample_period=0.1)
    )


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(doc)
    return [str(p) for p in caught.value.problems]


def test_results_are_broken_down_by_class_and_mixes_are_kept() -> None:
    scenario = shop().build()
    assert [w.id for w in scenario.generators] == ["browsers", "batch"]
    results = run_scenario(scenario, seed=9)
    classes = results.classes
    assert classes is not None
    assert list(classes) == ["browsers", "batch"]
    browsers, batch = classes["browsers"], classes["batch"]
    assert browsers.generated + batch.generated == results.requests.generated
    assert browsers.completed + batch.completed == results.requests.completed
    assert abs(browsers.generated - 1000) < 4 * 1000**0.5
    endpoints = results.servers["api"].endpoints
    assert endpoints["/page"].count == browsers.completed
    assert endpoints["/export"].count == batch.completed
    assert browsers.latency.mean is not None
    assert batch.latency.mean is not None
    assert batch.latency.mean > browsers.latency.mean
    assert browsers.closed is None
    assert batch.closed is not None
    assert batch.closed.users_mean == 3
    assert batch.closed.interactive_law_rps == pytest.approx(batch.throughput_rps, rel=0.05)
    assert results.closed is None
    load = results.offered_load
    assert load is not None
    assert load.rate_per_s is not None
    assert load.users == [3.0] * 100


def test_a_scenario_without_classes_has_no_breakdown() -> None:
    scenario = shop().to_dict()
    del scenario["workload_classes"]
    del scenario["rqs_input"]["endpoint_mix"]
    scenario["topology_graph"]["edges"] = [
        e for e in scenario["topology_graph"]["edges"] if e["source"] != "batch"
    ]
    assert run_scenario(parse_scenario(scenario), seed=1).classes is None


def test_class_fields_are_checked_at_their_paths() -> None:
    doc = shop().to_dict()
    doc["workload_classes"][0]["endpoint_mix"] = {"nowhere": {"/x": 1}, "api": {"/nope": 2}}
    found = problems_of(doc)
    assert "workload_classes[0].endpoint_mix.nowhere: there is no server 'nowhere'" in found
    assert any(
        p.startswith("workload_classes[0].endpoint_mix.api./nope: server 'api' has no endpoint")
        for p in found
    ), found

    doc = shop().to_dict()
    doc["workload_classes"][0]["id"] = "client"
    assert any("id 'client' is used by 2 nodes or edges" in p for p in problems_of(doc))

    doc = shop().to_dict()
    doc["topology_graph"]["edges"] = [
        e for e in doc["topology_graph"]["edges"] if e["source"] != "batch"
    ]
    assert "topology_graph.edges: no edge leaves the generator 'batch'" in problems_of(doc)

    doc = shop().to_dict()
    del doc["workload_classes"]
    assert any(
        p.startswith("rqs_input.endpoint_mix: an endpoint mix sets one class's endpoints apart")
        for p in problems_of(doc)
    )

    doc = shop().to_dict()
    doc["workload_classes"][0]["endpoint_mix"]["api"]["/page"] = 0
    assert any(
        p.startswith("workload_classes[0].endpoint_mix.api./page:") for p in problems_of(doc)
    )


def test_limits_sum_the_classes() -> None:
    scenario = shop().build()
    (problem,) = check_limits(scenario, ScenarioLimits(max_expected_requests=1000))
    assert problem.path == "workload_classes"
    assert "the sum over 2 workload classes" in problem.message
    # The ramp's integral plus the closed class's bound: 3 users / (0.5 s + 3 x 1 ms).
    assert scenario.expected_requests == pytest.approx(1000 + 3 / 0.503 * 100)


def test_the_builder_needs_a_workload_before_a_mix() -> None:
    with pytest.raises(BuilderUsageError):
        ScenarioBuilder().endpoint_mix("api", {"/page": 1})
    again = shop().arrival_rate("browsers", "steps", [(0, 1)]).to_dict()
    assert again["rqs_input"]["arrival_rate"]["shape"] == "steps"
    assert len(again["workload_classes"]) == 1
