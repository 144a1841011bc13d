"""Runs the queue forgot are queued again from the database, and still complete exactly once.

The API, the worker, Postgres and Redis are real; the queue "forgets" by
having every Redis key of the test's queue deleted, as a Redis restarted
without its data would.
"""

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from api_server import ApiServer, wait_for_status
from run_support import WorkerProcess, make_scenario
from sqlalchemy import func, select, update

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.db.models import Run, RunResult, utc_now
from asyncflow_backend.db.session import Database

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(postgres_database: Callable[[], str], redis_url: str, queue_name: str) -> Settings:
    url = postgres_database()
    upgrade(url)
    return Settings(
        database_url=url,
        redis_url=redis_url,
        queue_name=queue_name,
        stranded_after_s=2.0,
        lease_s=2.0,
        worker_heartbeat_timeout_s=3.0,
        worker_maintenance_chance=1.0,
    )


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[ApiServer]:
    api = ApiServer(settings, tmp_path / "api.log")
    yield api
    api.stop()


def _forget_everything(settings: Settings) -> int:
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.queue_name}:*"))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


async def _strand_as_running(settings: Settings, run_id: str) -> None:
    """Make the run look taken by a worker that died: running, its lease long run out."""
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            await session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status="running",
                    worker_id="gone:1:dead",
                    lease_until=utc_now() - timedelta(minutes=5),
                    attempts=1,
                )
            )
            await session.commit()
    finally:
        await database.dispose()


async def _result_rows(settings: Settings) -> dict[str, int]:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            rows = await session.execute(
                select(RunResult.run_id, func.count()).group_by(RunResult.run_id)
            )
            return {run_id: int(count) for run_id, count in rows.all()}
    finally:
        await database.dispose()


def test_runs_whose_queue_messages_are_lost_are_queued_again_and_complete_once(
    settings: Settings, server: ApiServer, start_worker: Callable[..., WorkerProcess]
) -> None:
    with server.client() as client:
        run_ids = []
        for _ in range(5):
            answer = client.post("/api/v1/simulations", json=make_scenario(rate=50, horizon=20))
            assert answer.status_code == 202, answer.text
            run_ids.append(answer.json()["id"])
        asyncio.run(_strand_as_running(settings, run_ids[0]))
        # No worker has fetched anything yet: every message of those runs is in Redis.
        assert _forget_everything(settings) > 0

        start_worker(settings)
        finished = [wait_for_status(client, r, {"succeeded"}) for r in run_ids]

    assert [run["status"] for run in finished] == ["succeeded"] * 5
    assert [run["attempts"] for run in finished] == [2, 1, 1, 1, 1]
    assert asyncio.run(_result_rows(settings)) == dict.fromkeys(run_ids, 1)
