"""The embedded executor: a pool of spawned processes inside the API process, on SQLite."""

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from run_support import LONG_RUN, make_scenario, niceness, wait_for_run

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import Run
from asyncflow_backend.db.repository import FINAL_STATUSES, RunRepository, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs import JobDispatcher, make_dispatcher
from asyncflow_backend.jobs.local import LocalPoolDispatcher
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import parse_scenario

pytestmark = pytest.mark.integration


def is_final(run: Run) -> bool:
    return run.status in FINAL_STATUSES


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    db = Database(sqlite_url)
    yield db
    await db.dispose()


@pytest.fixture
async def dispatchers(database: Database) -> AsyncIterator[Callable[..., Any]]:
    """Makes local dispatchers on the test's database; stops them after the test."""
    made: list[JobDispatcher] = []

    def make(**overrides: Any) -> JobDispatcher:
        settings = Settings(database_url=str(database.url), lease_s=5, **overrides)
        dispatcher = make_dispatcher(settings, database)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.stop()


async def _create(database: Database, scenario: dict[str, Any], seed: int | None = None) -> str:
    async with database.session() as session:
        run = await RunRepository(session).create(scenario, seed=seed)
    return run.id


def _without_wall_time(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "meta": {k: v for k, v in document["meta"].items() if k != "wall_seconds"}}


async def test_the_pool_runs_a_run_to_succeeded_with_the_seed_it_used(
    database: Database, dispatchers: Callable[..., JobDispatcher]
) -> None:
    dispatcher = dispatchers()
    assert isinstance(dispatcher, LocalPoolDispatcher)
    await dispatcher.start()
    assert await dispatcher.ping() is True
    scenario = make_scenario(rate=100, horizon=60)
    run_id = await _create(database, scenario)

    await dispatcher.submit(run_id)
    run = await wait_for_run(database, run_id, is_final)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.progress, run.simulated_s, run.attempts, run.error) == (1.0, 60.0, 1, None)
    assert run.seed is not None
    assert run.started_at is not None
    assert run.finished_at is not None
    assert run.created_at <= run.started_at <= run.finished_at
    async with database.session() as session:
        document = await RunRepository(session).get_document(run_id)
    assert document is not None
    assert document["meta"]["seed"] == run.seed
    # Replaying the stored seed gives the same numbers, series included.
    replay = run_scenario(parse_scenario(scenario), seed=run.seed).model_dump(mode="json")
    assert _without_wall_time(document) == _without_wall_time(replay)


async def test_a_restarted_api_runs_what_the_previous_process_left_behind(
    database: Database, dispatchers: Callable[..., JobDispatcher]
) -> None:
    # The previous process had queued one run and was executing another when it died.
    waiting = await _create(database, make_scenario(horizon=30))
    interrupted = await _create(database, make_scenario(horizon=30), seed=5)
    async with database.session() as session:
        await RunLeases(session).claim(interrupted, "dead-host:1:0", lease_s=600)

    await dispatchers().start()

    for run_id, attempts in ((waiting, 1), (interrupted, 2)):
        run = await wait_for_run(database, run_id, is_final)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.attempts == attempts
        assert run.worker_id != "dead-host:1:0"
    assert run.seed == 5


async def test_a_run_over_the_wall_time_limit_fails_naming_the_limit(
    database: Database, dispatchers: Callable[..., JobDispatcher]
) -> None:
    dispatcher = dispatchers(run_time_limit_s=1.0)
    await dispatcher.start()
    run_id = await _create(database, make_scenario(**LONG_RUN))

    await dispatcher.submit(run_id)
    run = await wait_for_run(database, run_id, is_final)

    assert run.status == RunStatus.FAILED
    assert run.error == "exceeded the wall-time limit of 1 s (ASYNCFLOW_RUN_TIME_LIMIT_S)"
    assert run.progress < 1.0
    async with database.session() as session:
        assert await RunRepository(session).get_results(run_id) is None


async def test_stopping_the_api_ends_running_runs_and_queues_them_again(
    database: Database, dispatchers: Callable[..., JobDispatcher]
) -> None:
    dispatcher = dispatchers()
    await dispatcher.start()
    run_id = await _create(database, make_scenario(**LONG_RUN))
    await dispatcher.submit(run_id)
    await wait_for_run(database, run_id, lambda r: r.progress > 0)
    children = multiprocessing.active_children()

    await dispatcher.stop()

    for child in children:
        child.join(timeout=10)
        assert not child.is_alive()
        assert child.exitcode == -signal.SIGTERM  # ended, not left to finish the run
    async with database.session() as session:
        run = await RunRepository(session).get(run_id)
    assert run is not None
    assert (run.status, run.worker_id) == (RunStatus.QUEUED, None)
    assert await dispatcher.ping() is False


@pytest.mark.parametrize(("nice", "sched_idle"), [(0, False), (7, True)])
async def test_pool_processes_run_at_a_lower_priority(
    database: Database, dispatchers: Callable[..., JobDispatcher], nice: int, sched_idle: bool
) -> None:
    dispatcher = dispatchers(worker_nice=nice, worker_sched_idle=sched_idle)
    await dispatcher.start()
    run_id = await _create(database, make_scenario(rate=1000, horizon=200))
    await dispatcher.submit(run_id)
    await wait_for_run(database, run_id, lambda r: r.progress > 0)
    [child] = multiprocessing.active_children()

    assert child.pid is not None
    assert niceness(child.pid) == min(19, niceness(os.getpid()) + nice)
    policy = os.SCHED_IDLE if sched_idle else os.sched_getscheduler(os.getpid())
    assert os.sched_getscheduler(child.pid) == policy


async def test_a_killed_pool_process_is_replaced_and_its_run_completes(
    database: Database, dispatchers: Callable[..., JobDispatcher]
) -> None:
    dispatcher = dispatchers()
    await dispatcher.start()
    run_id = await _create(database, make_scenario(rate=1000, horizon=200))
    await dispatcher.submit(run_id)
    await wait_for_run(database, run_id, lambda r: r.progress > 0)
    [child] = multiprocessing.active_children()

    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    run = await wait_for_run(database, run_id, is_final)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert await dispatcher.ping() is True


async def test_a_run_whose_worker_could_not_reach_the_database_is_tried_again(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The workers see the database through a folder that does not exist yet.
    real_file = Path(database.url.database or "")
    hidden = tmp_path / "not-yet"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{hidden / real_file.name}")
    dispatcher = LocalPoolDispatcher(settings, database)
    await dispatcher.start()
    try:
        run_id = await _create(database, make_scenario(horizon=20))
        with caplog.at_level(logging.WARNING, logger="asyncflow_backend.jobs.local"):
            await dispatcher.submit(run_id)
            for _ in range(600):
                if "retrying in" in caplog.text:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the failed attempt was not reported")
        hidden.symlink_to(real_file.parent, target_is_directory=True)

        run = await wait_for_run(database, run_id, is_final)

        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.attempts == 1
    finally:
        await dispatcher.stop()
