"""Experiments on real SQLite and Postgres, their replications executed as a worker does.

The replications run through `execute_run` on a thread, and `advance` is
called (or not) as a worker would, so each test chooses exactly what the
experiment has seen when it is cancelled, planned or deleted.
"""

import asyncio
from typing import Any

import pytest
from run_support import make_scenario
from sqlalchemy import select

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import ReplicationResult, RunResult
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.experiments import ExperimentSpec, prepare
from asyncflow_backend.jobs import execute_run
from asyncflow_backend.jobs.experiments import advance, cancel_experiment, start_experiment

pytestmark = pytest.mark.integration


async def _start(database: Database, replications: int, **spec: Any) -> tuple[str, list[str]]:
    document = {
        "scenario": make_scenario(horizon=5),
        "seed": 3,
        "replications": replications,
        **spec,
    }
    prepared = prepare(ExperimentSpec.model_validate(document))
    experiment, run_ids = await start_experiment(
        database, prepared.spec.model_dump(mode="json"), seed=prepared.seed, owner=None
    )
    return experiment.id, run_ids


async def _execute(database: Database, run_id: str) -> None:
    settings = Settings(database_url=str(database.url))
    execution = await asyncio.to_thread(execute_run, run_id, settings)
    assert execution.status == RunStatus.SUCCEEDED


async def test_a_cancelled_experiment_reports_every_replication_finished_before_the_cancel(
    database: Database,
) -> None:
    experiment_id, run_ids = await _start(database, replications=20)
    # Finished, but their worker has not planned yet (the report is refreshed every 10%).
    for run_id in run_ids[:3]:
        await _execute(database, run_id)

    cancelled = await cancel_experiment(database, experiment_id)

    assert cancelled is not None
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.replications_done == 3
    assert cancelled.report is not None
    assert [len(p["replications"]) for p in cancelled.report["points"]] == [3]


async def test_a_replication_that_finishes_after_the_cancel_counts_in_the_report(
    database: Database,
) -> None:
    experiment_id, run_ids = await _start(database, replications=20)
    await _execute(database, run_ids[0])
    late = run_ids[1]
    async with database.session() as session:
        claim = await RunLeases(session).claim(late, "worker-late", 30.0)
        measured = await session.scalar(
            select(ReplicationResult.document).where(ReplicationResult.run_id == run_ids[0])
        )
        results = await session.scalar(
            select(RunResult.document).where(RunResult.run_id == run_ids[0])
        )
    assert claim is not None
    assert measured is not None
    assert results is not None

    await cancel_experiment(database, experiment_id)
    # The running replication finished its last slice before it read the cancel.
    async with database.session() as session:
        stored = await RunLeases(session).succeed(
            late, "worker-late", results, {}, {**measured, "index": 1}
        )
    assert stored
    await advance(database, experiment_id)

    async with database.session() as session:
        experiment = await ExperimentRepository(session).get(experiment_id)
    assert experiment is not None
    assert experiment.status == RunStatus.CANCELLED
    assert experiment.replications_done == 2
