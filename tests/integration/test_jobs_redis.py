"""The Redis queue with real `asyncflow worker` processes, on Postgres.

Workers run with short timings (a 2 s lease, a 3 s heartbeat timeout and
queue maintenance on every command) so that recovery happens within seconds.
"""

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from run_support import (
    ASYNCFLOW,
    LONG_RUN,
    WorkerProcess,
    group_pids,
    make_scenario,
    niceness,
    wait_for_run,
)
from sqlalchemy import func, select

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.db.models import Run, RunResult, RunSeries
from asyncflow_backend.db.repository import FINAL_STATUSES, RunRepository, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs import QueueUnavailableError
from asyncflow_backend.jobs.redis_queue import RedisDispatcher

pytestmark = pytest.mark.integration


def is_final(run: Run) -> bool:
    return run.status in FINAL_STATUSES


def _settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        queue_name=f"asyncflow_test_{uuid.uuid4().hex[:12]}",
        lease_s=2.0,
        worker_heartbeat_timeout_s=3.0,
        worker_maintenance_chance=1.0,
    )


def _forget_queue(settings: Settings) -> None:
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.queue_name}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def module_settings(postgres_database: Callable[[], str], redis_url: str) -> Iterator[Settings]:
    """Settings on a fresh Postgres database and a queue of this module."""
    url = postgres_database()
    upgrade(url)
    settings = _settings(url, redis_url)
    yield settings
    _forget_queue(settings)


@pytest.fixture(scope="module")
def worker(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One `asyncflow worker` process serving the module's queue."""
    process = WorkerProcess(module_settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    process.stop()


@pytest.fixture
async def database(module_settings: Settings) -> AsyncIterator[Database]:
    db = Database(module_settings.database_url)
    yield db
    await db.dispose()


@pytest.fixture
async def dispatcher(module_settings: Settings) -> AsyncIterator[RedisDispatcher]:
    queue = RedisDispatcher(module_settings)
    await queue.start()
    yield queue
    await queue.stop()


async def _create(database: Database, scenario: dict[str, Any], seed: int | None = None) -> str:
    async with database.session() as session:
        run = await RunRepository(session).create(scenario, seed=seed)
    return run.id


async def _count(database: Database, table: Any, run_id: str) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(table).where(table.run_id == run_id)
        )
    return int(count or 0)


def _without_wall_time(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "meta": {k: v for k, v in document["meta"].items() if k != "wall_seconds"}}


@pytest.mark.usefixtures("worker")
async def test_a_worker_runs_a_run_and_the_cli_replays_it_identically(
    database: Database, dispatcher: RedisDispatcher, tmp_path: Path
) -> None:
    scenario = make_scenario(rate=200, horizon=60)
    run_id = await _create(database, scenario)  # no seed: the engine draws one

    await dispatcher.submit(run_id)
    run = await wait_for_run(database, run_id, is_final)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.attempts, run.progress) == (1, 1.0)
    assert run.seed is not None
    async with database.session() as session:
        document = await RunRepository(session).get_document(run_id)
    assert document is not None

    scenario_file = tmp_path / "scenario.json"
    scenario_file.write_text(json.dumps(scenario), encoding="utf-8")
    out = tmp_path / "results.json"
    subprocess.run(
        [
            str(ASYNCFLOW),
            "run",
            str(scenario_file),
            "--seed",
            str(run.seed),
            "--json",
            str(out),
            "--quiet",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    replay = json.loads(out.read_text(encoding="utf-8"))
    assert _without_wall_time(document) == _without_wall_time(replay)


async def test_worker_processes_run_at_a_lower_priority(
    worker: WorkerProcess, database: Database, dispatcher: RedisDispatcher
) -> None:
    run_id = await _create(database, make_scenario(rate=50, horizon=10))
    await dispatcher.submit(run_id)
    await wait_for_run(database, run_id, is_final)  # the worker processes are up by now

    processes = group_pids(worker.process.pid)

    assert len(processes) >= 2  # the command and its worker process
    expected = min(19, niceness(os.getpid()) + Settings().worker_nice)
    assert {niceness(pid) for pid in processes} == {expected}
    assert Settings().worker_sched_idle
    assert {os.sched_getscheduler(pid) for pid in processes} == {os.SCHED_IDLE}
    # The worker leads its own session: its session's CPU weight is lowered as well.
    autogroup = Path(f"/proc/{worker.process.pid}/autogroup")
    if autogroup.exists():  # kernels built with CONFIG_SCHED_AUTOGROUP
        assert autogroup.read_text().split()[-1] == str(Settings().worker_nice)


@pytest.mark.usefixtures("worker")
async def test_duplicate_messages_for_a_finished_run_change_nothing(
    database: Database, dispatcher: RedisDispatcher
) -> None:
    run_id = await _create(database, make_scenario(rate=50, horizon=30), seed=3)
    await dispatcher.submit(run_id)
    finished = await wait_for_run(database, run_id, is_final)
    assert finished.status == RunStatus.SUCCEEDED, finished.error

    for _ in range(2):
        await dispatcher.submit(run_id)
    # Wait until the worker has taken and acknowledged both messages.
    await asyncio.to_thread(dispatcher.broker.join, dispatcher.settings.queue_name, timeout=60_000)

    async with database.session() as session:
        after = await RunRepository(session).get(run_id)
    assert after is not None
    assert (after.status, after.attempts) == (RunStatus.SUCCEEDED, 1)
    assert after.finished_at == finished.finished_at
    assert await _count(database, RunResult, run_id) == 1


@pytest.mark.usefixtures("worker")
async def test_cancel_reaches_a_running_job(
    database: Database, dispatcher: RedisDispatcher
) -> None:
    run_id = await _create(database, make_scenario(**LONG_RUN))
    await dispatcher.submit(run_id)
    running = await wait_for_run(database, run_id, lambda r: r.progress > 0.02)
    assert running.status == RunStatus.RUNNING

    async with database.session() as session:
        asked = await RunRepository(session).request_cancel(run_id)
    assert asked is not None
    assert asked.cancel_requested is True
    run = await wait_for_run(database, run_id, is_final)

    assert run.status == RunStatus.CANCELLED
    # It stopped soon after the request, far from the end of the run.
    assert run.progress < min(1.0, running.progress + 0.5)
    assert await _count(database, RunResult, run_id) == 0


@pytest.fixture
def own_settings(postgres_database: Callable[[], str], redis_url: str) -> Iterator[Settings]:
    """Settings on a fresh database and queue of this test only."""
    url = postgres_database()
    upgrade(url)
    settings = _settings(url, redis_url)
    yield settings
    _forget_queue(settings)


async def test_a_run_of_a_killed_worker_is_delivered_again_and_completes_once(
    own_settings: Settings, start_worker: Callable[..., WorkerProcess]
) -> None:
    settings = own_settings
    database = Database(settings.database_url)
    dispatcher = RedisDispatcher(settings)
    try:
        first = start_worker(settings)
        scenario = make_scenario(rate=1000, horizon=400)
        run_id = await _create(database, scenario, seed=1)
        await dispatcher.submit(run_id)
        running = await wait_for_run(database, run_id, lambda r: r.progress > 0.05)

        first.kill()  # SIGKILL, no chance to clean up or give the message back
        assert running.status == RunStatus.RUNNING
        assert running.progress < 1.0
        start_worker(settings)
        run = await wait_for_run(database, run_id, is_final)

        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.attempts >= 2
        assert run.worker_id != running.worker_id
        assert await _count(database, RunResult, run_id) == 1
        assert await _count(database, RunSeries, run_id) == 6
    finally:
        await dispatcher.stop()
        await database.dispose()


async def test_submit_fails_cleanly_when_redis_is_unreachable(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, redis_url="redis://127.0.0.1:1/0")
    dispatcher = RedisDispatcher(settings)
    try:
        assert await dispatcher.ping() is False
        with pytest.raises(QueueUnavailableError):
            await dispatcher.submit("0" * 32)
    finally:
        await dispatcher.stop()
