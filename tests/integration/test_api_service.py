"""The service as deployed: `asyncflow serve --processes 2`, two `asyncflow worker`s,
Postgres and Redis.

Everything goes through HTTP to a real uvicorn process; runs are executed
by the worker processes from the Redis queue.
"""

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from api_server import ApiServer, wait_for_status
from run_support import ASYNCFLOW, LONG_RUN, WorkerProcess, group_pids, make_scenario

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def settings(postgres_database: Callable[[], str], redis_url: str) -> Iterator[Settings]:
    """A fresh Postgres database and a Redis queue of this module."""
    url = postgres_database()
    upgrade(url)
    queue = f"asyncflow_test_{uuid.uuid4().hex[:12]}"
    yield Settings(
        database_url=url, redis_url=redis_url, queue_name=queue, max_body_bytes=MAX_BODY_BYTES
    )
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{queue}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API as two processes sharing its port, and two single-process workers."""
    logs = tmp_path_factory.mktemp("service")
    workers = [WorkerProcess(settings, logs / f"worker-{i}.log") for i in range(2)]
    server = ApiServer(settings, logs / "api.log", processes=2)
    try:
        yield server
    finally:
        server.stop()
        for worker in workers:
            worker.stop()


@pytest.fixture(scope="module")
def api(server: ApiServer) -> Iterator[httpx.Client]:
    """A client of the API, keeping its connection open between requests."""
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def finished(api: httpx.Client) -> dict[str, Any]:
    """A small run submitted as JSON, finished."""
    answer = api.post("/api/v1/simulations", json=make_scenario(rate=100, horizon=30))
    assert answer.status_code == 202, answer.text
    return wait_for_status(api, answer.json()["id"], {"succeeded"})


def _submit(api: httpx.Client, scenario: dict[str, Any], **params: Any) -> dict[str, Any]:
    answer = api.post("/api/v1/simulations", json=scenario, params=params)
    assert answer.status_code == 202, answer.text
    run: dict[str, Any] = answer.json()
    return run


def test_ready_sees_postgres_and_redis(api: httpx.Client) -> None:
    ready = api.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "queue": "ok"}
    assert api.get("/health").json() == {"status": "ok"}


def test_json_submission_runs_to_success_with_results(
    api: httpx.Client, finished: dict[str, Any]
) -> None:
    assert finished["progress"] == 1.0
    assert finished["attempts"] == 1
    results = api.get(f"/api/v1/simulations/{finished['id']}/results").json()
    assert results["requests"]["generated"] == pytest.approx(3000, rel=0.1)
    assert results["meta"]["seed"] == finished["seed"]
    series = results["time_series"]["series"]
    assert set(series) >= {"ready_queue_len", "ram_in_use", "edge_concurrent_connection"}
    assert all(len(v) == 300 for comps in series.values() for v in comps.values())


def test_yaml_submission_runs_to_success(api: httpx.Client) -> None:
    answer = api.post(
        "/api/v1/simulations",
        content=yaml.safe_dump(make_scenario(rate=50, horizon=20)),
        headers={"content-type": "application/yaml"},
        params={"seed": 123},
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/api/v1/simulations/{answer.json()['id']}"
    run = wait_for_status(api, answer.json()["id"], {"succeeded"})
    assert run["seed"] == 123


def test_timeseries_views(api: httpx.Client, finished: dict[str, Any]) -> None:
    path = f"/api/v1/simulations/{finished['id']}/timeseries"
    view = api.get(
        path,
        params={"metric": "edge_concurrent_connection", "start": 5, "end": 10, "max_points": 20},
    ).json()
    assert {s["component"] for s in view["series"]} == {"gen-client", "client-srv", "srv-client"}
    for series in view["series"]:
        assert series["points_in_window"] == 51
        assert len(series["t"]) == 20
        assert series["t"][0] == pytest.approx(5.0)
        assert series["t"][-1] == pytest.approx(10.0)
    small = api.get(f"/api/v1/simulations/{finished['id']}/results", params={"max_points": 30})
    assert small.json()["time_series"]["sample_period_s"] == pytest.approx(1.0)


def test_the_api_and_the_cli_give_identical_numbers(api: httpx.Client, tmp_path: Path) -> None:
    scenario = make_scenario(rate=150, horizon=40)
    # A pool that queues, so that its waits, series and summaries are compared too.
    server = scenario["topology_graph"]["nodes"]["servers"][0]
    server["server_resources"]["db_connection_pool"] = 1
    run = _submit(api, scenario, seed=2024)
    wait_for_status(api, run["id"], {"succeeded"})
    served = api.get(f"/api/v1/simulations/{run['id']}/results", params={"max_points": 100_000})

    scenario_file = tmp_path / "scenario.yml"
    scenario_file.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    out = tmp_path / "results.json"
    subprocess.run(
        [str(ASYNCFLOW), "run", str(scenario_file), "--seed", "2024", "--json", str(out), "-q"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    local = json.loads(out.read_text(encoding="utf-8"))
    remote = served.json()
    for document in (local, remote):
        document["meta"].pop("wall_seconds")
    assert remote["pools"]["srv:db"]["wait_mean_s"] > 0
    assert remote["latency"]["over_time"]["count"]
    assert remote == local


def test_list_filters_and_paginates(api: httpx.Client, finished: dict[str, Any]) -> None:
    everything = api.get("/api/v1/simulations", params={"limit": 100}).json()
    assert everything["total"] == len(everything["items"]) >= 1
    created = [run["created_at"] for run in everything["items"]]
    assert created == sorted(created, reverse=True)
    pages = [
        api.get("/api/v1/simulations", params={"limit": 1, "offset": i}).json()["items"]
        for i in range(everything["total"])
    ]
    assert [page[0]["id"] for page in pages] == [run["id"] for run in everything["items"]]
    succeeded = api.get("/api/v1/simulations", params={"status": "succeeded"}).json()
    assert finished["id"] in {run["id"] for run in succeeded["items"]}
    assert all(run["status"] == "succeeded" for run in succeeded["items"])
    failed = api.get("/api/v1/simulations", params={"status": "failed"}).json()
    assert failed == {"items": [], "total": 0, "limit": 20, "offset": 0}


def test_cancelling_a_running_run(api: httpx.Client) -> None:
    run = _submit(api, make_scenario(**LONG_RUN))
    wait_for_status(api, run["id"], {"running"})
    answer = api.post(f"/api/v1/simulations/{run['id']}/cancel")
    assert answer.status_code == 202
    stopped = wait_for_status(api, run["id"], {"cancelled"})
    assert stopped["progress"] < 1.0
    assert stopped["finished_at"] is not None
    conflict = api.get(f"/api/v1/simulations/{run['id']}/results")
    assert conflict.status_code == 409
    assert conflict.json()["status"] == "cancelled"


def test_error_answers(api: httpx.Client, finished: dict[str, Any]) -> None:
    before = api.get("/api/v1/simulations").json()["total"]
    unknown = api.get(f"/api/v1/simulations/{uuid.uuid4().hex}")
    assert unknown.status_code == 404
    finished_cancel = api.post(f"/api/v1/simulations/{finished['id']}/cancel")
    assert finished_cancel.status_code == 409
    assert finished_cancel.json()["status"] == "succeeded"

    bad = make_scenario()
    bad["topology_graph"]["edges"][2]["target"] = "nowhere"
    bad["rqs_input"]["avg_active_users"]["mean"] = -3
    invalid = api.post("/api/v1/simulations", json=bad)
    assert invalid.status_code == 422
    paths = [p["path"] for p in invalid.json()["detail"]]
    assert "rqs_input.avg_active_users.mean" in paths

    too_big = api.post("/api/v1/simulations", json=make_scenario(rate=100_000, horizon=86_400))
    assert too_big.status_code == 422
    assert any("ASYNCFLOW_MAX_" in p["msg"] for p in too_big.json()["detail"])

    huge = api.post(
        "/api/v1/simulations",
        content=b"{" + b" " * MAX_BODY_BYTES + b"}",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert api.get("/api/v1/simulations").json()["total"] == before


def test_queued_run_results_are_a_409_naming_the_status(api: httpx.Client) -> None:
    # Two long runs occupy both workers; a third waits in the queue.
    busy = [_submit(api, make_scenario(**LONG_RUN)) for _ in range(2)]
    queued = _submit(api, make_scenario())
    for run in busy:
        wait_for_status(api, run["id"], {"running"})
    answer = api.get(f"/api/v1/simulations/{queued['id']}/results")
    assert answer.status_code == 409
    assert answer.json()["status"] == "queued"
    assert "queued" in answer.json()["detail"]
    for run in [queued, *busy]:
        assert api.post(f"/api/v1/simulations/{run['id']}/cancel").status_code in {200, 202}
    for run in [queued, *busy]:
        wait_for_status(api, run["id"], {"cancelled"})


def test_api_processes_answer_alike_on_fresh_connections(
    server: ApiServer, finished: dict[str, Any]
) -> None:
    # Each new connection is accepted by whichever API process takes it first.
    serving = [
        pid
        for pid in group_pids(server.process.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(serving) == 2, serving
    for _ in range(20):
        with httpx.Client(base_url=server.url, timeout=30) as fresh:
            answer = fresh.get(f"/api/v1/simulations/{finished['id']}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "succeeded"
