"""Experiments on the Redis queue with real `asyncflow worker` processes, on Postgres.

Each replication is a run; the worker that finishes one plans the next. A
worker killed mid-experiment loses nothing: its replication is delivered
again, completes once, and the experiment ends with every replication
measured exactly once and the same numbers as the same experiment run in
one process.
"""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from run_support import WorkerProcess, make_scenario
from sqlalchemy import func, select

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.db.models import Experiment, ReplicationResult, Run
from asyncflow_backend.db.repository import FINAL_STATUSES, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.experiments import ExperimentSpec, prepare, run_experiment
from asyncflow_backend.jobs.experiments import start_experiment
from asyncflow_backend.jobs.redis_queue import RedisDispatcher

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(postgres_database: Callable[[], str], redis_url: str) -> Iterator[Settings]:
    url = postgres_database()
    upgrade(url)
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        queue_name=f"asyncflow_test_{uuid.uuid4().hex[:12]}",
        lease_s=2.0,
        worker_heartbeat_timeout_s=3.0,
        worker_maintenance_chance=1.0,
    )
    yield settings
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{settings.queue_name}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def submit(
    settings: Settings, database: Database, document: dict[str, Any]
) -> tuple[str, int]:
    prepared = prepare(ExperimentSpec.model_validate(document))
    experiment, run_ids = await start_experiment(
        database, prepared.spec.model_dump(mode="json"), seed=prepared.seed, owner=None
    )
    dispatcher = RedisDispatcher(settings)
    try:
        for run_id in run_ids:
            await dispatcher.submit(run_id)
    finally:
        await dispatcher.stop()
    return experiment.id, len(run_ids)


async def wait_for(
    database: Database, experiment_id: str, until: Callable[[Experiment, list[Run]], bool]
) -> tuple[Experiment, list[Run]]:
    """Poll until `until` holds. No deadline of its own: the test's ceiling
    (pytest-timeout) fails a wait that never ends, and the last state printed here is
    in its report."""
    last = None
    while True:
        async with database.session() as session:
            repository = ExperimentRepository(session)
            experiment = await repository.get(experiment_id)
            runs = await repository.runs(experiment_id)
        assert experiment is not None
        if until(experiment, runs):
            return experiment, runs
        state = (experiment.status, [(r.status, round(r.progress, 1), r.attempts) for r in runs])
        if state != last:
            print("experiment", experiment_id, *state)
            last = state
        await asyncio.sleep(0.2)


def finished(experiment: Experiment, _: list[Run]) -> bool:
    return RunStatus(experiment.status) in FINAL_STATUSES


def without_wall_time(report: dict[str, Any]) -> list[Any]:
    return [[{**r, "wall_seconds": 0} for r in point["replications"]] for point in report["points"]]


async def test_a_killed_worker_loses_no_replication_and_the_report_is_the_in_process_one(
    settings: Settings, start_worker: Callable[..., WorkerProcess]
) -> None:
    document = {
        "scenario": make_scenario(rate=500, horizon=120),
        "seed": 21,
        "replications": 2,
        "sweep": [{"path": "rqs_input.avg_active_users.mean", "values": [400, 500]}],
    }
    database = Database(settings.database_url)
    try:
        # The doomed worker starts alone, so the replication under way is surely its own.
        doomed = start_worker(settings)
        experiment_id, queued = await submit(settings, database, document)
        assert queued == 4

        def one_well_under_way(experiment: Experiment, runs: list[Run]) -> bool:
            # Should every replication end unseen, fail now rather than at the ceiling.
            assert not finished(experiment, runs), "the experiment ended before the kill"
            # Progress is written at most every 0.5 s, which a replication may not live to
            # see, so one is caught as soon as it runs; at this horizon it still has
            # seconds of work ahead when the kill comes.
            return any(r.status == RunStatus.RUNNING for r in runs)

        await wait_for(database, experiment_id, one_well_under_way)
        start_worker(settings)
        doomed.kill()  # SIGKILL: the machine dies mid-replication
        experiment, runs = await wait_for(database, experiment_id, finished)

        async with database.session() as session:
            measured = await session.scalar(
                select(func.count())
                .select_from(ReplicationResult)
                .where(ReplicationResult.experiment_id == experiment_id)
            )
    finally:
        await database.dispose()

    assert experiment.status == RunStatus.SUCCEEDED, experiment.error
    assert len(runs) == 4
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert any(r.attempts >= 2 for r in runs), "the killed worker's replication ran again"
    assert measured == 4
    report = experiment.report
    assert report is not None
    assert report["complete"]
    assert report["replications_done"] == 4
    in_process = run_experiment(prepare(ExperimentSpec.model_validate(document)))
    assert without_wall_time(report) == without_wall_time(in_process.model_dump(mode="json"))


async def test_cancel_stops_every_replication_on_every_worker(
    settings: Settings, start_worker: Callable[..., WorkerProcess]
) -> None:
    document = {"scenario": make_scenario(rate=1000, horizon=400), "seed": 1, "replications": 2}
    database = Database(settings.database_url)
    try:
        start_worker(settings, processes=2)
        experiment_id, _ = await submit(settings, database, document)

        def two_running(_: Experiment, runs: list[Run]) -> bool:
            return sum(r.status == RunStatus.RUNNING and r.progress > 0 for r in runs) == 2

        await wait_for(database, experiment_id, two_running)
        async with database.session() as session:
            cancelled = await ExperimentRepository(session).request_cancel(experiment_id)
        assert cancelled is not None
        assert cancelled.status == RunStatus.CANCELLED

        def all_stopped(_: Experiment, runs: list[Run]) -> bool:
            return all(RunStatus(r.status) in FINAL_STATUSES for r in runs)

        experiment, runs = await wait_for(database, experiment_id, all_stopped)
    finally:
        await database.dispose()
    assert experiment.status == RunStatus.CANCELLED
    assert [r.status for r in runs] == [RunStatus.CANCELLED] * 2
    assert all(r.progress < 1.0 for r in runs)
