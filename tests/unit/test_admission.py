"""Admission control: the schema of the caps, the builder, and rejections in the engine."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.runtime.admission import AdmissionGate
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from support.scenarios import api_calling_db, cpu_station

SERVER = "topology_graph.nodes.servers[0]"


def capped(**caps: int) -> ScenarioBuilder:
    """Generator -> client -> srv (1 core, 20 ms of CPU) -> client, ~100 requests/s."""
    return cpu_station(
        rate=100, cpu=exponential(0.02), horizon_s=30, endpoint="/api", dropout=0.0, **caps
    )


def paths(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return {p.path: p.message for p in caught.value.problems}


def test_the_builder_writes_the_caps_and_leaves_them_out_when_unset() -> None:
    document = capped(max_ready_queue=3, max_concurrency=9).to_dict()
    assert document["topology_graph"]["nodes"]["servers"][0]["admission"] == {
        "max_ready_queue": 3,
        "max_concurrency": 9,
    }
    assert "admission" not in capped().to_dict()["topology_graph"]["nodes"]["servers"][0]


@pytest.mark.parametrize(
    ("admission", "path", "words"),
    [
        ({}, f"{SERVER}.admission", "max_ready_queue, max_concurrency or both"),
        ({"max_concurrency": 0}, f"{SERVER}.admission.max_concurrency", "greater than 0"),
        ({"max_ready_queue": -1}, f"{SERVER}.admission.max_ready_queue", "greater than or equal"),
        ({"max_queue": 3}, f"{SERVER}.admission.max_queue", "not permitted"),
    ],
)
def test_bad_caps_are_refused_at_their_path(
    admission: dict[str, int], path: str, words: str
) -> None:
    document = capped().to_dict()
    document["topology_graph"]["nodes"]["servers"][0]["admission"] = admission

    found = paths(document)

    assert path in found, found
    assert words in found[path]


def test_only_a_server_with_caps_is_built_to_check_them() -> None:
    plain = SimulationRunner(capped().build(), seed=1).model.servers["srv"]
    guarded = SimulationRunner(capped(max_concurrency=2).build(), seed=1).model.servers["srv"]

    assert plain.receive == plain._admit  # no gate: arrivals go straight in
    assert isinstance(getattr(guarded.receive, "__self__", None), AdmissionGate)


def test_a_ready_queue_cap_of_zero_rejects_whoever_finds_the_core_busy() -> None:
    results = run_scenario(capped(max_ready_queue=0).build(), seed=3)
    requests = results.requests

    assert requests.rejected > 0
    assert requests.rejected_at == {"srv": requests.rejected}
    assert [(e.outcome, e.reason) for e in requests.ends if e.outcome == "rejected"] == [
        ("rejected", "queue_full")
    ]
    assert results.servers["srv"].ready_queue_max in (None, 0.0)
    assert sum(requests.per_second["rejected"]) == requests.rejected
    assert requests.generated == (
        requests.completed + requests.rejected + requests.dropped + requests.in_flight
    )


def test_a_concurrency_cap_bounds_the_requests_in_the_server() -> None:
    scenario = capped(max_concurrency=3).build()
    runner = SimulationRunner(scenario, seed=5)
    server = runner.model.servers["srv"]
    peak = 0
    receive = server.receive

    def watch(request: Any) -> None:
        nonlocal peak
        receive(request)
        peak = max(peak, server.in_service)

    server.receive = watch  # type: ignore[method-assign]
    results = runner.run()

    assert peak == 3
    assert results.requests.rejected_at == {"srv": results.requests.rejected}
    assert {e.reason for e in results.requests.ends if e.outcome == "rejected"} == {
        "concurrency_limit"
    }


def test_a_rejected_call_fails_its_caller_at_once() -> None:
    db_cpu_s, db_options = exponential(0.02), {"max_concurrency": 1}
    scenario = api_calling_db(
        rate=100, api_cpu_s=None, db_cpu_s=db_cpu_s, db_options=db_options, horizon_s=20
    ).build()

    results = run_scenario(scenario, seed=2)

    assert results.requests.rejected == 0
    assert results.requests.failed_at == {"db": results.requests.failed}
    assert results.requests.failed > 0
    assert {e.reason for e in results.requests.ends if e.outcome == "failed"} == {"call_rejected"}
    site = results.calls["api:/api#0->db"]
    assert site.failed == results.requests.failed
