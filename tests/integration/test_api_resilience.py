"""The API survives its own restart, and its database or queue being stopped and started.

The outages are real: a PostgreSQL and a Redis server of the test's own are
stopped (`pg_ctl stop -m fast`, SIGTERM) and started again on the same port,
while the same API process keeps serving.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from api_server import ApiServer, submit_run, wait_for_status
from private_servers import PrivatePostgres, PrivateRedis
from run_support import WorkerProcess, make_scenario

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade

pytestmark = pytest.mark.integration

MEDIUM_RUN = {"rate": 1000.0, "horizon": 50.0}
"""A run of a few seconds: long enough to be caught running when the API stops."""


@pytest.fixture
def fresh_database(postgres_database: Callable[[], str]) -> str:
    url = postgres_database()
    upgrade(url)
    return url


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def _statuses(client: httpx.Client, run_ids: list[str]) -> list[str]:
    return [client.get(f"/api/v1/simulations/{r}").json()["status"] for r in run_ids]


@pytest.mark.parametrize("execution", ["local pool", "redis workers"])
def test_runs_queued_and_running_when_the_api_stops_all_finish_after_it_restarts(
    execution: str,
    fresh_database: str,
    redis_url: str,
    queue_name: str,
    workers: list[WorkerProcess],
    servers: list[ApiServer],
    tmp_path: Path,
) -> None:
    if execution == "local pool":
        settings = Settings(database_url=fresh_database, redis_url=None, local_workers=1)
    else:
        settings = Settings(database_url=fresh_database, redis_url=redis_url, queue_name=queue_name)
        workers.append(WorkerProcess(settings, tmp_path / "worker.log"))
    first = ApiServer(settings, tmp_path / "api-1.log")
    servers.append(first)
    with first.client() as client:
        run_ids = [submit_run(client, make_scenario(**MEDIUM_RUN)) for _ in range(3)]
        wait_for_status(client, run_ids[0], {"running"})
        assert _statuses(client, run_ids)[1:] == ["queued", "queued"]
    first.stop()

    second = ApiServer(settings, tmp_path / "api-2.log", port=first.port)
    servers.append(second)
    with second.client() as client:
        for run_id in run_ids:
            run = wait_for_status(client, run_id, {"succeeded"})
            assert run["progress"] == 1.0
        assert _statuses(client, run_ids) == ["succeeded"] * 3


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test only, migrated, which it may stop and start."""
    server = PrivatePostgres()
    try:
        upgrade(server.url())
        yield server
    finally:
        server.remove()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis server of this test only, which it may stop and start."""
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.remove()


def test_postgres_stopped_answers_503_and_the_api_recovers_without_restart(
    private_postgres: PrivatePostgres,
    redis_url: str,
    queue_name: str,
    workers: list[WorkerProcess],
    servers: list[ApiServer],
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url=private_postgres.url(), redis_url=redis_url, queue_name=queue_name
    )
    workers.append(WorkerProcess(settings, tmp_path / "worker.log"))
    server = ApiServer(settings, tmp_path / "api.log")
    servers.append(server)
    with server.client() as client:
        done = submit_run(client, make_scenario(rate=50, horizon=10))
        wait_for_status(client, done, {"succeeded"})

        private_postgres.stop()  # pg_ctl stop -m fast: the server is really gone
        for method, path in [
            ("GET", "/api/v1/simulations"),
            ("GET", f"/api/v1/simulations/{done}"),
            ("GET", f"/api/v1/simulations/{done}/results"),
            ("POST", f"/api/v1/simulations/{done}/cancel"),
            ("POST", "/api/v1/simulations"),
        ]:
            answer = client.request(method, path, json=make_scenario())
            assert answer.status_code == 503, (method, path, answer.text)
            assert answer.json() == {"detail": "the database is unavailable; try again shortly"}
            assert answer.headers["retry-after"] == "5"
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "down", "queue": "ok"}
        assert client.get("/health").status_code == 200

        private_postgres.start()  # same port, same data; the API process is the same one
        assert client.get("/api/v1/simulations").json()["total"] == 1
        assert client.get(f"/api/v1/simulations/{done}/results").status_code == 200
        assert client.get("/ready").status_code == 200
        again = submit_run(client, make_scenario(rate=50, horizon=10))
        wait_for_status(client, again, {"succeeded"})

        # A restart that no request saw: the pool still holds connections to the old
        # server. The first request to meet one may fail; it renews the whole pool.
        private_postgres.stop()
        private_postgres.start()
        first = client.get(f"/api/v1/simulations/{done}")
        assert first.status_code in {200, 503}, first.text
        for _ in range(5):
            assert client.get(f"/api/v1/simulations/{done}").status_code == 200
    assert server.process.poll() is None  # never restarted


# With a rate limit, the limiter's Redis call is the first to fail; without one, the run
# is stored, then refused by the queue and deleted. Both must leave nothing behind.
@pytest.mark.parametrize("rate_limit", ["120/minute", ""], ids=["limiter", "no limiter"])
def test_redis_stopped_refuses_runs_without_storing_them_and_recovers(
    fresh_database: str,
    private_redis: PrivateRedis,
    queue_name: str,
    workers: list[WorkerProcess],
    servers: list[ApiServer],
    tmp_path: Path,
    rate_limit: str,
) -> None:
    settings = Settings(
        database_url=fresh_database,
        redis_url=private_redis.url,
        queue_name=queue_name,
        submit_rate_limit=rate_limit,
    )
    workers.append(WorkerProcess(settings, tmp_path / "worker.log"))
    server = ApiServer(settings, tmp_path / "api.log")
    servers.append(server)
    with server.client() as client:
        before = submit_run(client, make_scenario(rate=50, horizon=10))
        wait_for_status(client, before, {"succeeded"})

        private_redis.stop()  # the server process exits, every connection is closed
        for _ in range(3):
            refused = client.post("/api/v1/simulations", json=make_scenario())
            assert refused.status_code == 503, refused.text
            assert "job queue is unavailable" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "5"
        # Nothing half-stored: the refused runs are not in the database.
        assert client.get("/api/v1/simulations").json()["total"] == 1
        assert client.get(f"/api/v1/simulations/{before}").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "queue": "down"}

        private_redis.start()  # same port and data; neither the API nor the worker restarts
        assert client.get("/ready").status_code == 200
        run_id = submit_run(client, make_scenario(rate=50, horizon=10))
        wait_for_status(client, run_id, {"succeeded"})
        assert client.get("/api/v1/simulations").json()["total"] == 2
    assert server.process.poll() is None
