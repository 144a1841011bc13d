"""When the database or the queue is down, or something breaks: clear JSON, nothing half-done."""

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from api_support import serving, sqlite_settings
from fastapi import FastAPI

from asyncflow_backend.api.dependencies import Service
from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.session import Database
from asyncflow_backend.main import create_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Nothing listens on port 1: connections are refused at once, as when Postgres is down.
UNREACHABLE_POSTGRES = "postgresql+asyncpg://asyncflow@127.0.0.1:1/asyncflow"

DATABASE_ROUTES = [
    ("POST", "/api/v1/simulations"),
    ("GET", "/api/v1/simulations"),
    ("GET", f"/api/v1/simulations/{'0' * 32}"),
    ("GET", f"/api/v1/simulations/{'0' * 32}/results"),
    ("POST", f"/api/v1/simulations/{'0' * 32}/cancel"),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("failures"))


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM /srv/asyncflow/config.py")

    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as client:
        yield client


async def test_health_and_ready_answer_when_all_is_up(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "queue": "ok"}


async def test_database_down_is_503_and_recovers_when_it_is_back(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    service: Service = app.state.service
    unreachable = Database(UNREACHABLE_POSTGRES)
    app.state.service = dataclasses.replace(service, database=unreachable)
    try:
        for method, path in DATABASE_ROUTES:
            answer = await client.request(method, path, json=SMALL_SCENARIO)
            assert answer.status_code == 503, (method, path, answer.text)
            assert answer.json() == {"detail": "the database is unavailable; try again shortly"}
            assert answer.headers["retry-after"]
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "down"
        assert "database" in ready.json()["detail"]
        # Health does no I/O: the process is up even though its database is not.
        assert (await client.get("/health")).status_code == 200
    finally:
        app.state.service = service
        await unreachable.dispose()
    assert (await client.get("/api/v1/simulations")).status_code == 200
    assert (await client.get("/ready")).status_code == 200


async def test_queue_down_refuses_the_run_and_stores_nothing(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    before = (await client.get("/api/v1/simulations")).json()["total"]
    # A second app on the same database whose pool is stopped: the queue refuses runs.
    other = create_app(settings)
    async with serving(other) as broken:
        await other.state.service.dispatcher.stop()
        answer = await broken.post("/api/v1/simulations", json=SMALL_SCENARIO)
        assert answer.status_code == 503
        assert "job queue is unavailable" in answer.json()["detail"]
        ready = await broken.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "queue": "down"}
        assert ready.json()["detail"] == "queue down"
    assert (await client.get("/api/v1/simulations")).json()["total"] == before


async def test_unexpected_errors_are_a_generic_500(client: httpx.AsyncClient) -> None:
    answer = await client.get("/boom")
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error; the incident was logged"}
    assert "SELECT" not in answer.text


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    wrong = await client.put("/api/v1/simulations")
    assert wrong.status_code == 405
    assert wrong.json() == {"detail": "Method Not Allowed"}
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    run = await client.options(f"/api/v1/simulations/{'0' * 32}")
    assert run.headers["allow"] == "DELETE, GET, HEAD"
