"""Experiments on real SQLite and Postgres, their replications executed as a worker does.

The replications run through `execute_run` on a thread, and `advance` is
called (or not) as a worker would, so each test chooses exactly what the
experiment has seen when it is cancelled, planned or deleted.
"""

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from run_support import make_scenario
from sqlalchemy import func, select, update

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import (
    Experiment,
    ReplicationResult,
    Run,
    RunResult,
    RunSeries,
    utc_now,
)
from asyncflow_backend.db.repository import RunRepository, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.db.storage import Deleted, Storage
from asyncflow_backend.experiments import ExperimentSpec, prepare
from asyncflow_backend.jobs import execute_run
from asyncflow_backend.jobs.experiments import advance, cancel_experiment, start_experiment
from asyncflow_backend.jobs.retention import RetentionSweeper

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


async def _execute(database: Database, run_id: str, **configured: Any) -> None:
    settings = Settings(database_url=str(database.url), **configured)
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


async def _rows(database: Database, run_ids: list[str], experiment_id: str | None) -> list[int]:
    """Rows left in each table for these runs (and this experiment)."""
    async with database.session() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(table).where(column.in_(run_ids)))
            for table, column in (
                (Run, Run.id),
                (RunResult, RunResult.run_id),
                (RunSeries, RunSeries.run_id),
                (ReplicationResult, ReplicationResult.run_id),
            )
        ]
        if experiment_id is not None:
            counts.append(
                await session.scalar(
                    select(func.count())
                    .select_from(Experiment)
                    .where(Experiment.id == experiment_id)
                )
            )
    return [int(count or 0) for count in counts]


async def test_replications_store_their_summary_and_no_series_unless_allowed(
    database: Database,
) -> None:
    _, run_ids = await _start(database, replications=2)
    await _execute(database, run_ids[0])
    await _execute(database, run_ids[1], max_replication_samples=10**6)

    assert await _rows(database, run_ids[:1], None) == [1, 1, 0, 1]
    runs, results, series, measured = await _rows(database, run_ids[1:], None)
    assert (runs, results, measured) == (1, 1, 1)
    assert series == 6  # every sampled series, under the bound of a million samples


async def test_deleting_an_experiment_removes_everything_it_and_its_replications_stored(
    database: Database,
) -> None:
    experiment_id, run_ids = await _start(database, replications=3)
    for run_id in run_ids:
        await _execute(database, run_id, max_replication_samples=10**6)
    assert await _rows(database, run_ids, experiment_id) == [3, 3, 18, 3, 1]

    async with database.session() as session:
        assert await Storage(session).delete_experiment(experiment_id, owner="someone") is False
        assert await Storage(session).delete_experiment(experiment_id) is True
        assert await Storage(session).delete_experiment(experiment_id) is False

    assert await _rows(database, run_ids, experiment_id) == [0, 0, 0, 0, 0]


async def test_deleting_a_run_removes_its_results_and_series_and_frees_its_storage(
    database: Database,
) -> None:
    async with database.session() as session:
        run = await RunRepository(session).create(make_scenario(horizon=5), seed=1, owner="k1")
        before = await Storage(session).used_bytes("k1")
    await _execute(database, run.id)
    _, replication_ids = await _start(database, replications=2)
    async with database.session() as session:
        storage = Storage(session)
        stored = await storage.used_bytes("k1")
        refused = await storage.delete_run(replication_ids[0])
        deleted = await storage.delete_run(run.id, owner="k1")
        after = await storage.used_bytes("k1")
        again = await storage.delete_run(run.id, owner="k1")

    # The scenario counts from submission; results and 6 series of 50 samples when it succeeds.
    assert 0 < before < stored - 6 * 50 * 8
    assert (refused, deleted, again) == (Deleted.REPLICATION, Deleted.DELETED, Deleted.NOT_FOUND)
    assert after == 0
    assert await _rows(database, [run.id], None) == [0, 0, 0, 0]


async def test_the_retention_sweep_deletes_only_what_finished_before_the_period(
    database: Database,
) -> None:
    async with database.session() as session:
        repository = RunRepository(session)
        old = await repository.create(make_scenario(horizon=5), seed=1)
        recent = await repository.create(make_scenario(horizon=5), seed=2)
        unfinished = await repository.create(make_scenario(horizon=5), seed=3)
    await _execute(database, old.id)
    await _execute(database, recent.id)
    old_experiment, old_replications = await _start(database, replications=2)
    await cancel_experiment(database, old_experiment)
    running_experiment, _ = await _start(database, replications=2)
    long_ago = utc_now() - timedelta(days=31)
    async with database.session() as session:
        await session.execute(update(Run).where(Run.id == old.id).values(finished_at=long_ago))
        await session.execute(
            update(Experiment).where(Experiment.id == old_experiment).values(finished_at=long_ago)
        )
        await session.commit()

    swept = await RetentionSweeper(Settings(retention_days=30), database).sweep()

    assert swept == 2
    assert await _rows(database, [old.id, *old_replications], old_experiment) == [0, 0, 0, 0, 0]
    assert (await _rows(database, [recent.id, unfinished.id], running_experiment))[0::4] == [2, 1]
