"""Experiments on real SQLite and Postgres, their replications executed as a worker does.

The replications run through `execute_run` on a thread, and `advance` is
called (or not) as a worker would, so each test chooses exactly what the
experiment has seen when it is cancelled, planned or deleted.
"""

import asyncio
from typing import Any

import pytest
from run_support import make_scenario
from sqlalchemy import func, select

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import ReplicationResult, Run, RunResult
from asyncflow_backend.db.repository import RunRepository, RunStatus
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


SWEEP = [{"path": "rqs_input.avg_active_users.mean", "values": [20, 30]}]


async def test_replications_refer_to_the_experiment_scenario_and_are_created_in_bounded_batches(
    database: Database,
) -> None:
    document = {"scenario": make_scenario(horizon=5), "seed": 3, "replications": 500}
    prepared = prepare(ExperimentSpec.model_validate({**document, "sweep": SWEEP}))
    experiment, run_ids = await start_experiment(
        database,
        prepared.spec.model_dump(mode="json"),
        seed=prepared.seed,
        owner=None,
        queue_ahead=8,
    )
    async with database.session() as session:
        runs = list(await session.scalars(select(Run).where(Run.experiment_id == experiment.id)))
        stored = await ExperimentRepository(session).get(experiment.id)
    # 1000 replications planned, 8 created; none holds a copy of the scenario.
    assert len(run_ids) == len(runs) == 8
    assert stored is not None
    assert stored.replications_planned == 1000
    assert all(run.scenario is None for run in runs)
    assert {run.overrides["rqs_input.avg_active_users.mean"] for run in runs} == {20}

    async with database.session() as session:
        shown = await RunRepository(session).scenario_of(runs[0])
        claim = await RunLeases(session).claim(runs[0].id, "worker-1", 30.0)
    expected = make_scenario(horizon=5)
    expected["rqs_input"]["avg_active_users"]["mean"] = 20
    assert shown == expected
    assert claim is not None
    assert claim.scenario == expected

    for run_id in run_ids[1:5]:
        await _execute(database, run_id)
    # Half the batch has finished: the next ones are created, never more than 8 in flight.
    more = await advance(database, experiment.id, queue_ahead=8)
    assert len(more) == 4
    async with database.session() as session:
        unfinished = await session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.experiment_id == experiment.id, Run.status.in_(["queued", "running"]))
        )
    assert unfinished == 8
