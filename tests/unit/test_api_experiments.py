"""/api/v1/experiments on the embedded setup: SQLite and the local pool, each replication a run."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from api_support import api_client, sqlite_settings

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.experiments import replication_seed
from support.scenarios import parsing_server


@pytest.fixture
def two_workers(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path).model_copy(update={"local_workers": 2})


@pytest.fixture
def one_worker(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path, max_experiment_replications=50, max_sweep_validation_mb=0.005)


async def follow(
    client: httpx.AsyncClient, experiment_id: str, timeout_s: float = 120.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await client.get(f"/api/v1/experiments/{experiment_id}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        if view["status"] in {"succeeded", "failed", "cancelled"}:
            return view
        assert time.monotonic() < deadline, f"still {view['status']} after {timeout_s} s"
        await asyncio.sleep(0.1)


async def test_an_experiment_runs_its_replications_as_runs_and_reports(
    two_workers: Settings,
) -> None:
    sweep = [{"path": "rqs_input.avg_active_users.mean", "values": [10, 20]}]
    document = {
        "scenario": parsing_server(users=20, horizon_s=5.0),
        "seed": 4,
        "replications": 3,
        "sweep": sweep,
    }
    async with api_client(two_workers) as client:
        answer = await client.post("/api/v1/experiments", json=document)
        assert answer.status_code == 202, answer.text
        submitted = answer.json()
        assert answer.headers["location"] == f"/api/v1/experiments/{submitted['id']}"
        assert submitted["replications_planned"] == 6
        assert submitted["kind"] == "sweep"

        view = await follow(client, submitted["id"])
        chart = await client.get(f"/api/v1/experiments/{submitted['id']}/plot?format=svg")
        unknown = await client.get(f"/api/v1/experiments/{submitted['id']}/plot?metric=p97")
        page = await client.get(f"/experiments/{submitted['id']}")
        listed = (await client.get("/api/v1/experiments")).json()
        runs = (await client.get("/api/v1/simulations")).json()

    assert view["status"] == "succeeded", view["error"]
    assert view["progress"] == 1.0
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/svg+xml"
    assert unknown.status_code == 404
    assert "valid names" in unknown.json()["detail"]
    assert page.status_code == 200
    assert "experiment.js" in page.text
    report = view["report"]
    assert report["complete"]
    assert [len(p["replications"]) for p in report["points"]] == [3, 3]
    for point in report["points"]:
        seeds = [r["seed"] for r in point["replications"]]
        assert seeds == [replication_seed(4, i) for i in range(3)]
        assert point["summary"]["latency.p95"]["n"] == 3
    low, high = (p["summary"]["throughput.mean_rps"]["mean"] for p in report["points"])
    assert high > 1.5 * low
    assert listed["total"] == 1
    assert listed["items"][0]["report"] is None
    assert runs["total"] == 0, "replications are listed by their experiment, not as runs"


async def test_a_search_plans_more_runs_as_replications_finish(two_workers: Settings) -> None:
    document = {
        "scenario": parsing_server(users=20, horizon_s=5.0),
        "seed": 2,
        "replications": 2,
        "search": {
            "objective": {"metric": "servers.srv.cpu_utilisation", "at_most": 0.2},
            "tolerance": 0.2,
            "max_replications": 4,
        },
    }
    async with api_client(two_workers) as client:
        answer = await client.post(
            "/api/v1/experiments",
            content=yaml.safe_dump(document),
            headers={"content-type": "application/yaml"},
        )
        assert answer.status_code == 202, answer.text
        view = await follow(client, answer.json()["id"])
    assert view["status"] == "succeeded", view["error"]
    search = view["report"]["search"]
    # 20 users at 1 request/s, 5 ms each: utilisation 0.1, so the capacity is near factor 2.
    assert search["status"] == "found"
    assert search["low"] <= 2.0 * 1.1
    assert search["high"] >= 2.0 * 0.9
    assert len(view["report"]["points"]) >= 3


async def test_invalid_experiments_are_422_naming_the_field_and_nothing_is_stored(
    one_worker: Settings,
) -> None:
    async with api_client(one_worker) as client:
        unknown = await client.post(
            "/api/v1/experiments",
            json={
                "scenario": parsing_server(users=20, horizon_s=5.0),
                "until_precise": {
                    "metric": "latency.p97",
                    "relative_half_width": 0.1,
                    "max_replications": 20,
                },
            },
        )
        too_many = await client.post(
            "/api/v1/experiments",
            json={"scenario": parsing_server(users=20, horizon_s=5.0), "replications": 51},
        )
        sweep = [{"path": "rqs_input.avg_active_users.mean", "values": list(range(1, 25))}]
        document = {
            "scenario": parsing_server(users=20, horizon_s=5.0),
            "sweep": sweep,
            "replications": 2,
        }
        costly = await client.post("/api/v1/experiments", json=document)
        by_path = await client.post("/api/v1/experiments", json={"scenario": "mm1.yml"})
        broken = await client.post(
            "/api/v1/experiments", content=b"{", headers={"content-type": "application/json"}
        )
        bad_scenario = await client.post("/api/v1/experiments", json={"scenario": {"x": 1}})
        listed = (await client.get("/api/v1/experiments")).json()
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["path"] == "until_precise.metric"
    assert too_many.status_code == 422
    assert "more than the limit of 50" in too_many.text
    assert costly.status_code == 422
    assert costly.json()["detail"][0]["path"] == "sweep"
    assert "ASYNCFLOW_MAX_SWEEP_VALIDATION_MB" in costly.json()["detail"][0]["msg"]
    assert by_path.status_code == 422
    assert by_path.json()["detail"][0]["path"] == "scenario"
    assert broken.status_code == 422
    assert bad_scenario.status_code == 422
    assert bad_scenario.json()["detail"][0]["path"].startswith("scenario")
    assert listed["total"] == 0


async def test_cancel_stops_the_whole_experiment(one_worker: Settings) -> None:
    document = {"scenario": parsing_server(users=20, horizon_s=200.0), "seed": 1, "replications": 6}
    async with api_client(one_worker) as client:
        submitted = (await client.post("/api/v1/experiments", json=document)).json()
        cancelled = await client.post(f"/api/v1/experiments/{submitted['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        view = await follow(client, submitted["id"])
        again = await client.post(f"/api/v1/experiments/{submitted['id']}/cancel")
        missing = await client.get("/api/v1/experiments/0123456789abcdef0123456789abcdef")
        not_an_id = await client.post("/api/v1/experiments/nope/cancel")
    assert view["status"] == "cancelled"
    assert view["finished_at"] is not None
    assert again.json()["status"] == "cancelled"
    assert missing.status_code == 404
    assert not_an_id.status_code == 404
