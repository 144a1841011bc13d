"""The simulations API end to end in-process: SQLite file, local worker pool, real runs."""

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from api_support import api_client, sqlite_settings, wait_for

from asyncflow_backend.api.examples import SMALL_SCENARIO, SMALL_SCENARIO_YAML
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.schemas.results import SimulationResults
from support.scenarios import small_scenario

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("api"), max_body_bytes=MAX_BODY_BYTES)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def finished(client: httpx.AsyncClient) -> dict[str, Any]:
    """The small scenario, submitted as JSON and run to success."""
    answer = await client.post("/api/v1/simulations", json=SMALL_SCENARIO)
    assert answer.status_code == 202, answer.text
    return await wait_for(client, answer.json()["id"], {"succeeded"})


async def _total(client: httpx.AsyncClient) -> int:
    total: int = (await client.get("/api/v1/simulations")).json()["total"]
    return total


async def test_submit_answers_202_with_location_and_a_queued_run(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/api/v1/simulations", json=SMALL_SCENARIO)
    assert answer.status_code == 202
    run = answer.json()
    assert answer.headers["location"] == f"/api/v1/simulations/{run['id']}"
    assert run["status"] in {"queued", "running"}
    assert run["seed"] == SMALL_SCENARIO["seed"]
    assert run["links"]["self"] == answer.headers["location"]
    assert run["links"]["results"] == f"{answer.headers['location']}/results"
    await wait_for(client, run["id"], {"succeeded"})


async def test_a_finished_run_reports_full_progress(finished: dict[str, Any]) -> None:
    assert finished["progress"] == 1.0
    assert finished["simulated_s"] == pytest.approx(60.0)
    assert finished["error"] is None
    assert finished["created_at"] <= finished["started_at"] <= finished["finished_at"]
    assert finished["attempts"] == 1


async def test_results_are_the_whole_document(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    answer = await client.get(f"/api/v1/simulations/{finished['id']}/results")
    assert answer.status_code == 200
    results = SimulationResults.model_validate(answer.json())
    assert results.meta.seed == 7
    assert results.requests.generated > 300
    assert results.time_series.sample_period_s == pytest.approx(0.1)
    ram = results.time_series.series["ram_in_use"]["api-1"]
    assert len(ram) == 600  # t = 0, 0.1, ..., 59.9: every sample when under max_points


async def test_the_scenario_reads_back_as_accepted_and_replays_the_run(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    answer = await client.get(f"/api/v1/simulations/{finished['id']}/scenario")
    assert answer.status_code == 200
    scenario = answer.json()
    assert scenario["topology_graph"]["nodes"]["servers"][0]["id"] == "api-1"
    # As accepted: what was sent, with the defaults filled in.
    assert SMALL_SCENARIO["sim_settings"].items() <= scenario["sim_settings"].items()
    assert "enabled_sample_metrics" in scenario["sim_settings"]

    replay = await client.post("/api/v1/simulations", json=scenario)
    assert replay.status_code == 202, replay.text
    again = await wait_for(client, replay.json()["id"], {"succeeded"})
    first = (await client.get(f"/api/v1/simulations/{finished['id']}/results")).json()
    second = (await client.get(f"/api/v1/simulations/{again['id']}/results")).json()
    assert first["latency"] == second["latency"]


async def test_results_average_long_series_into_max_points_buckets(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    path = f"/api/v1/simulations/{finished['id']}/results"
    full = (await client.get(path)).json()["time_series"]
    small = (await client.get(path, params={"max_points": 70})).json()["time_series"]
    assert small["sample_period_s"] == pytest.approx(0.9)  # ceil(600 / 70) = 9 samples a bucket
    for metric, components in full["series"].items():
        for component, values in components.items():
            reduced = small["series"][metric][component]
            assert len(reduced) == 67  # 66 full buckets and 6 samples in the last one
            assert reduced[0] == pytest.approx(sum(values[:9]) / 9)
            assert reduced[-1] == pytest.approx(sum(values[-6:]) / 6)


@pytest.mark.parametrize("max_points", [1, 0, 100_001, "many"])
async def test_max_points_out_of_bounds_is_a_422(
    client: httpx.AsyncClient, finished: dict[str, Any], max_points: object
) -> None:
    answer = await client.get(
        f"/api/v1/simulations/{finished['id']}/results", params={"max_points": max_points}
    )
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "max_points"]
    assert problem["path"] == "query.max_points"


async def test_timeseries_window_keeps_its_first_and_last_samples(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    answer = await client.get(
        f"/api/v1/simulations/{finished['id']}/timeseries",
        params={
            "metric": "ram_in_use",
            "component": "api-1",
            "start": 10,
            "end": 20.05,
            "max_points": 30,
        },
    )
    assert answer.status_code == 200, answer.text
    view = answer.json()
    (series,) = view["series"]
    assert (series["metric"], series["component"]) == ("ram_in_use", "api-1")
    assert series["points_in_window"] == 101
    assert series["downsampled"] is True
    assert len(series["t"]) == len(series["values"]) == 30
    assert series["t"][0] == pytest.approx(10.0)
    assert series["t"][-1] == pytest.approx(20.0)
    full = (await client.get(f"/api/v1/simulations/{finished['id']}/results")).json()
    ram = full["time_series"]["series"]["ram_in_use"]["api-1"]
    for t, value in zip(series["t"], series["values"], strict=True):
        assert ram[round(t / 0.1)] == value


async def test_timeseries_without_filters_lists_every_series(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    view = (await client.get(f"/api/v1/simulations/{finished['id']}/timeseries")).json()
    full = (await client.get(f"/api/v1/simulations/{finished['id']}/results")).json()
    expected = {(m, c) for m, comps in full["time_series"]["series"].items() for c in comps}
    assert {(s["metric"], s["component"]) for s in view["series"]} == expected
    assert all(not s["downsampled"] and s["points_in_window"] == 600 for s in view["series"])


@pytest.mark.parametrize(
    "params",
    [{"component": "nope"}, {"component": "api-1", "metric": "edge_concurrent_connection"}],
)
async def test_timeseries_of_a_component_without_series_is_404(
    client: httpx.AsyncClient, finished: dict[str, Any], params: dict[str, str]
) -> None:
    unknown = await client.get(f"/api/v1/simulations/{finished['id']}/timeseries", params=params)
    assert unknown.status_code == 404
    assert f"for component '{params['component']}'" in unknown.json()["detail"]


async def test_timeseries_window_ending_before_it_starts_is_422(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    answer = await client.get(
        f"/api/v1/simulations/{finished['id']}/timeseries", params={"start": 5, "end": 1}
    )
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "end"]
    assert "must not be before start" in problem["msg"]
    same = await client.get(
        f"/api/v1/simulations/{finished['id']}/timeseries", params={"start": 1, "end": 1}
    )
    assert same.status_code == 200


async def test_yaml_with_a_seed_override_gives_the_numbers_of_json_with_that_seed(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    unseeded = dict(SMALL_SCENARIO, seed=None)
    answer = await client.post(
        "/api/v1/simulations",
        params={"seed": 7},
        content=yaml.safe_dump(unseeded),
        headers={"content-type": "application/yaml"},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["seed"] == 7
    run = await wait_for(client, answer.json()["id"], {"succeeded"})
    first = (await client.get(f"/api/v1/simulations/{finished['id']}/results")).json()
    second = (await client.get(f"/api/v1/simulations/{run['id']}/results")).json()
    for document in (first, second):
        document["meta"].pop("wall_seconds")
    assert first == second


async def test_a_scenario_without_seed_gets_one_drawn_and_reported(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/api/v1/simulations",
        content=SMALL_SCENARIO_YAML.replace("seed: 7\n", ""),
        headers={"content-type": "text/yaml"},
    )
    assert answer.status_code == 202, answer.text
    assert isinstance(answer.json()["seed"], int)
    await wait_for(client, answer.json()["id"], {"succeeded"})


async def test_invalid_scenarios_list_every_problem_and_store_nothing(
    client: httpx.AsyncClient,
) -> None:
    before = await _total(client)
    bad = small_scenario()
    bad["topology_graph"]["edges"][1]["target"] = "api-2"
    bad["sim_settings"]["sample_period_s"] = 0
    bad["surprise"] = True
    answer = await client.post("/api/v1/simulations", json=bad)
    assert answer.status_code == 422
    body = answer.json()
    paths = {p["path"] for p in body["detail"]}
    assert {"surprise", "sim_settings.sample_period_s"} <= paths
    assert all(p["loc"][0] == "body" and p["type"] == "invalid_scenario" for p in body["detail"])
    assert "problem" in body["message"]
    assert await _total(client) == before


async def test_a_breached_limit_is_a_422_naming_the_limit(client: httpx.AsyncClient) -> None:
    before = await _total(client)
    big = small_scenario()
    big["sim_settings"]["total_simulation_time"] = 10**6
    answer = await client.post("/api/v1/simulations", json=big)
    assert answer.status_code == 422
    limits = [p for p in answer.json()["detail"] if p["type"] == "limit_exceeded"]
    assert any("ASYNCFLOW_MAX_HORIZON_S" in p["msg"] for p in limits)
    assert await _total(client) == before


async def test_query_parameter_errors_have_the_same_shape(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/simulations", params={"seed": -1}, json=SMALL_SCENARIO)
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "seed"]
    assert problem["path"] == "query.seed"
    assert set(problem) == {"loc", "path", "msg", "type"}


async def test_oversized_bodies_are_413_whether_declared_or_streamed(
    client: httpx.AsyncClient,
) -> None:
    before = await _total(client)
    filler = {"padding": "x" * MAX_BODY_BYTES}
    declared = await client.post("/api/v1/simulations", json={**SMALL_SCENARIO, **filler})
    assert declared.status_code == 413
    assert "ASYNCFLOW_MAX_BODY_BYTES" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    streamed = await client.post(
        "/api/v1/simulations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert await _total(client) == before


async def test_other_media_types_are_415(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/v1/simulations",
        content=json.dumps(SMALL_SCENARIO),
        headers={"content-type": "text/plain"},
    )
    assert answer.status_code == 415
    assert "application/yaml" in answer.json()["detail"]


@pytest.mark.parametrize(
    "run_id", ["0" * 32, "5b0c7e1a-2f4d-4c55-9a3e-7d1f0b2c9e11", "not-a-run", "%00"]
)
async def test_unknown_runs_are_404_everywhere(client: httpx.AsyncClient, run_id: str) -> None:
    base = f"/api/v1/simulations/{run_id}"
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/results"),
        ("GET", f"{base}/timeseries"),
        ("GET", f"{base}/scenario"),
        ("POST", f"{base}/cancel"),
        ("DELETE", base),
    ]:
        answer = await client.request(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
        assert "no simulation run" in answer.json()["detail"]


async def test_a_404_does_not_echo_a_huge_id(client: httpx.AsyncClient) -> None:
    huge = "x" * 10_000
    for path in (f"/api/v1/simulations/{huge}", f"/runs/{huge}"):
        answer = await client.get(path)
        assert answer.status_code == 404
        assert len(answer.text) < 5_000
        assert "x" * 65 not in answer.text
        assert "(10000 characters)" in answer.text


async def test_head_answers_like_get_without_a_body(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    for path in (
        "/health",
        f"/api/v1/simulations/{finished['id']}",
        "/api/v1/simulations",
        "/",
        "/openapi.json",
    ):
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"], path
    missing = await client.head("/api/v1/simulations/not-a-run")
    assert (missing.status_code, missing.content) == (404, b"")
    refused = await client.put("/api/v1/simulations")
    assert refused.status_code == 405
    assert "HEAD" in refused.headers["allow"]


async def test_a_compressed_body_is_415(client: httpx.AsyncClient) -> None:
    body = gzip.compress(json.dumps(SMALL_SCENARIO).encode())
    declared = await client.post(
        "/api/v1/scenarios/validate",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    undeclared = await client.post(
        "/api/v1/scenarios/validate", content=body, headers={"content-type": "application/json"}
    )
    assert declared.status_code == undeclared.status_code == 415
    assert "Content-Encoding 'gzip'" in declared.json()["detail"]
    assert "gzip-compressed" in undeclared.json()["detail"]


async def test_list_is_newest_first_paginated_and_filtered(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    page = (await client.get("/api/v1/simulations", params={"limit": 100})).json()
    created = [run["created_at"] for run in page["items"]]
    assert created == sorted(created, reverse=True)
    assert page["total"] == len(page["items"]) >= 2
    second = (await client.get("/api/v1/simulations", params={"limit": 1, "offset": 1})).json()
    assert second["items"] == page["items"][1:2]
    assert (second["total"], second["limit"], second["offset"]) == (page["total"], 1, 1)
    done = (await client.get("/api/v1/simulations", params={"status": "succeeded"})).json()
    assert finished["id"] in {run["id"] for run in done["items"]}
    assert {run["status"] for run in done["items"]} == {"succeeded"}
    bad = await client.get("/api/v1/simulations", params={"status": "paused"})
    assert bad.status_code == 422


async def test_cancelling_a_running_run_stops_it(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/v1/simulations", json=small_scenario(horizon_s=5_000, users=100)
    )
    run_id = answer.json()["id"]
    await wait_for(client, run_id, {"running"})
    cancel = await client.post(f"/api/v1/simulations/{run_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["cancel_requested"] is True
    stopped = await wait_for(client, run_id, {"cancelled"})
    assert stopped["progress"] < 1.0
    results = await client.get(f"/api/v1/simulations/{run_id}/results")
    assert results.status_code == 409
    assert results.json()["status"] == "cancelled"
    again = await client.post(f"/api/v1/simulations/{run_id}/cancel")
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


async def test_cancelling_a_queued_run_is_immediate(client: httpx.AsyncClient) -> None:
    # The one pool process is busy with the first run, so the second waits in the queue.
    busy = (
        await client.post("/api/v1/simulations", json=small_scenario(horizon_s=5_000, users=100))
    ).json()["id"]
    queued = (await client.post("/api/v1/simulations", json=SMALL_SCENARIO)).json()["id"]
    await wait_for(client, busy, {"running"})
    assert (await client.get(f"/api/v1/simulations/{queued}")).json()["status"] == "queued"
    cancel = await client.post(f"/api/v1/simulations/{queued}/cancel")
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    results = await client.get(f"/api/v1/simulations/{queued}/timeseries")
    assert results.status_code == 409
    assert "cancelled" in results.json()["detail"]
    assert (await client.post(f"/api/v1/simulations/{busy}/cancel")).status_code == 202
    await wait_for(client, busy, {"cancelled"})


async def test_finished_runs_cannot_be_cancelled(
    client: httpx.AsyncClient, finished: dict[str, Any]
) -> None:
    answer = await client.post(f"/api/v1/simulations/{finished['id']}/cancel")
    assert answer.status_code == 409
    assert answer.json()["status"] == "succeeded"


async def test_validate_summarises_a_valid_scenario(client: httpx.AsyncClient) -> None:
    before = await _total(client)
    answer = await client.post(
        "/api/v1/scenarios/validate",
        content=SMALL_SCENARIO_YAML,
        headers={"content-type": "application/x-yaml"},
    )
    assert answer.status_code == 200
    report = answer.json()
    assert report["valid"] is True
    assert report["summary"]["servers"] == 1
    assert report["summary"]["edges"] == 3
    assert report["summary"]["expected_requests"] == pytest.approx(600)
    assert await _total(client) == before


async def test_validate_lists_problems_like_submit(client: httpx.AsyncClient) -> None:
    bad = small_scenario()
    bad["topology_graph"]["edges"][1]["target"] = "api-2"
    validated = await client.post("/api/v1/scenarios/validate", json=bad)
    submitted = await client.post("/api/v1/simulations", json=bad)
    assert validated.status_code == submitted.status_code == 422
    assert validated.json() == submitted.json()
    assert validated.json()["detail"][0]["path"] == "topology_graph.edges[1].target"


async def test_validate_and_submit_return_the_same_warnings(client: httpx.AsyncClient) -> None:
    warned = small_scenario()
    warned["topology_graph"]["edges"][1]["latency"] = {"mean": 0.002}

    validated = await client.post("/api/v1/scenarios/validate", json=warned)
    submitted = await client.post("/api/v1/simulations", json=warned)

    assert validated.status_code == 200
    assert submitted.status_code == 202
    warnings = validated.json()["warnings"]
    assert submitted.json()["warnings"] == warnings
    assert [(w["loc"], w["path"]) for w in warnings] == [
        (["body", "topology_graph", "edges", 1, "latency"], "topology_graph.edges[1].latency"),
        (["body", "topology_graph", "edges"], "topology_graph.edges"),
    ]
    assert "Poisson with mean 0.002 s" in warnings[0]["msg"]
    assert "every edge drops 1%" in warnings[1]["msg"]
    # The run goes ahead as written; its status document carries no warnings.
    run = await wait_for(client, submitted.json()["id"], {"succeeded"})
    assert "warnings" not in run


async def test_a_scenario_without_surprises_has_an_empty_list_of_warnings(
    client: httpx.AsyncClient,
) -> None:
    lossless = small_scenario()
    for edge in lossless["topology_graph"]["edges"]:
        edge["dropout_rate"] = 0.0

    validated = await client.post("/api/v1/scenarios/validate", json=lossless)

    assert validated.json()["warnings"] == []
