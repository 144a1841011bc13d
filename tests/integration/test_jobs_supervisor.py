"""`asyncflow worker` replaces a worker process that dies, and its run completes once.

The worker runs with the default heartbeat timeout, maintenance chance and
lease, so the run can only come back promptly through the supervisor giving
it back (Dramatiq's own maintenance would take about 100 s).
"""

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from run_support import WorkerProcess, make_scenario, wait_for_run
from sqlalchemy import func, select

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.db.models import Run, RunResult
from asyncflow_backend.db.repository import FINAL_STATUSES, RunRepository, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs.redis_queue import RedisDispatcher

pytestmark = pytest.mark.integration


async def _results(database: Database, run_id: str) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(RunResult).where(RunResult.run_id == run_id)
        )
    return int(count or 0)


async def _kill_the_runner_and_wait(settings: Settings, scenario: dict[str, Any]) -> dict[str, Any]:
    database = Database(settings.database_url)
    dispatcher = RedisDispatcher(settings)
    try:
        async with database.session() as session:
            run_id = (await RunRepository(session).create(scenario, seed=3)).id
        await dispatcher.submit(run_id)
        # Caught while it runs: a run finished before the poll saw it leaves nothing to kill.
        running = await wait_for_run(
            database, run_id, lambda r: r.status == RunStatus.RUNNING and r.progress > 0.05
        )
        assert running.worker_id is not None
        child = int(running.worker_id.split(":")[-2])  # host:pid:random
        os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        run: Run = await wait_for_run(database, run_id, lambda r: r.status in FINAL_STATUSES)
        return {
            "run": run,
            "first_worker": running.worker_id,
            "child": child,
            "recovery_s": time.monotonic() - killed_at,
            "results": await _results(database, run_id),
        }
    finally:
        await dispatcher.stop()
        await database.dispose()


def test_a_killed_worker_process_is_replaced_and_its_run_completes_once(
    postgres_database: Callable[[], str],
    redis_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    url = postgres_database()
    upgrade(url)
    settings = Settings(
        database_url=url, redis_url=redis_url, queue_name=f"asyncflow_test_{uuid.uuid4().hex[:12]}"
    )
    worker = start_worker(settings, processes=1)

    outcome = asyncio.run(
        _kill_the_runner_and_wait(settings, make_scenario(rate=1000, horizon=180))
    )

    run = outcome["run"]
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.worker_id != outcome["first_worker"]
    assert f":{outcome['child']}:" not in run.worker_id  # a new process finished it
    assert outcome["results"] == 1
    assert worker.process.poll() is None  # `asyncflow worker` itself kept running
    print(f"killed worker process's run completed {outcome['recovery_s']:.1f} s later")
