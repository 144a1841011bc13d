"""The run repository on real SQLite and Postgres databases."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from run_support import make_scenario
from sqlalchemy import func, select, update

from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import Run, RunResult, RunSeries
from asyncflow_backend.db.repository import RunRepository, RunStatus
from asyncflow_backend.db.session import Database

pytestmark = pytest.mark.integration

SCENARIO = make_scenario()


async def test_a_created_run_is_queued_with_its_scenario_and_utc_times(database: Database) -> None:
    before = datetime.now(UTC)
    async with database.session() as session:
        created = await RunRepository(session).create(SCENARIO, seed=7, owner="alice")
    async with database.session() as session:
        run = await RunRepository(session).get(created.id)

    assert run is not None
    assert len(run.id) == 32
    assert run.status == RunStatus.QUEUED
    assert run.scenario == SCENARIO
    assert (run.seed, run.owner, run.attempts, run.progress) == (7, "alice", 0, 0.0)
    assert run.cancel_requested is False
    assert run.created_at.tzinfo is not None
    assert run.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= run.created_at <= datetime.now(UTC)
    assert run.started_at is None
    assert run.finished_at is None
    assert run.error is None


async def test_get_filters_by_owner_when_one_is_given(database: Database) -> None:
    async with database.session() as session:
        repo = RunRepository(session)
        run = await repo.create(SCENARIO, seed=None, owner="alice")
        assert await repo.get(run.id, owner="alice") is not None
        assert await repo.get(run.id, owner="bob") is None
        assert await repo.get(run.id) is not None
        assert await repo.get("0" * 32) is None


async def test_list_is_newest_first_paginated_and_filtered(database: Database) -> None:
    async with database.session() as session:
        repo = RunRepository(session)
        ids = []
        for i in range(5):
            run = await repo.create(SCENARIO, seed=i, owner="alice" if i % 2 == 0 else "bob")
            ids.append(run.id)
            await asyncio.sleep(0.002)  # distinct creation times
        await repo.request_cancel(ids[1])

        page, total = await repo.list(status=None, limit=2, offset=0)
        assert total == 5
        assert [r.id for r in page] == [ids[4], ids[3]]
        page, total = await repo.list(status=None, limit=2, offset=4)
        assert [r.id for r in page] == [ids[0]]

        queued, total = await repo.list(status=RunStatus.QUEUED, limit=10, offset=0)
        assert total == 4
        assert ids[1] not in [r.id for r in queued]
        cancelled, total = await repo.list(status=RunStatus.CANCELLED, limit=10, offset=0)
        assert (total, [r.id for r in cancelled]) == (1, [ids[1]])

        mine, total = await repo.list(status=None, limit=10, offset=0, owner="alice")
        assert total == 3
        assert [r.id for r in mine] == [ids[4], ids[2], ids[0]]
        theirs, total = await repo.list(status=RunStatus.QUEUED, limit=10, offset=0, owner="bob")
        assert (total, [r.id for r in theirs]) == (1, [ids[3]])


async def test_cancelling_a_queued_run_cancels_it_at_once(database: Database) -> None:
    async with database.session() as session:
        repo = RunRepository(session)
        run = await repo.create(SCENARIO, seed=None)
        cancelled = await repo.request_cancel(run.id)

    assert cancelled is not None
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.finished_at is not None


async def test_cancelling_a_live_running_run_only_asks_its_worker(database: Database) -> None:
    async with database.session() as session:
        run = await RunRepository(session).create(SCENARIO, seed=None)
    async with database.session() as session:
        await RunLeases(session).claim(run.id, "worker-a", lease_s=60)
    async with database.session() as session:
        asked = await RunRepository(session).request_cancel(run.id)

    assert asked is not None
    assert asked.status == RunStatus.RUNNING
    assert asked.cancel_requested is True
    async with database.session() as session:
        cancel = await RunLeases(session).renew(
            run.id, "worker-a", 60, progress=0.5, simulated_s=30
        )
    assert cancel is True


async def test_cancelling_a_running_run_whose_worker_went_silent_cancels_it(
    database: Database,
) -> None:
    async with database.session() as session:
        run = await RunRepository(session).create(SCENARIO, seed=None)
    async with database.session() as session:
        await RunLeases(session).claim(run.id, "worker-a", lease_s=60)
        await session.execute(
            update(Run)
            .where(Run.id == run.id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    async with database.session() as session:
        cancelled = await RunRepository(session).request_cancel(run.id)

    assert cancelled is not None
    assert cancelled.status == RunStatus.CANCELLED


async def test_cancelling_a_finished_run_or_another_owners_run_changes_nothing(
    database: Database,
) -> None:
    async with database.session() as session:
        run = await RunRepository(session).create(SCENARIO, seed=None, owner="alice")
    async with database.session() as session:
        leases = RunLeases(session)
        await leases.claim(run.id, "worker-a", lease_s=60)
        await leases.finish(run.id, "worker-a", RunStatus.FAILED, "boom")
    async with database.session() as session:
        repo = RunRepository(session)
        assert await repo.request_cancel(run.id, owner="bob") is None
        after = await repo.request_cancel(run.id, owner="alice")

    assert after is not None
    assert (after.status, after.error, after.cancel_requested) == (RunStatus.FAILED, "boom", False)


async def test_results_and_series_round_trip_exactly_and_delete_removes_everything(
    database: Database,
) -> None:
    period = 0.1
    series = {
        "ram_in_use": {"srv": [0.0, 16.0, 1 / 3, 1e-300, 123456789.123456789]},
        "edge_concurrent_connection": {"a": [1.0, 2.0], "b": []},
    }
    document = {
        "requests": {"generated": 3},
        "time_series": {"sample_period_s": period},
        "meta": {"seed": 42, "simulated_seconds": 60.0, "wall_seconds": 0.5},
    }
    async with database.session() as session:
        run = await RunRepository(session).create(SCENARIO, seed=None)
    async with database.session() as session:
        leases = RunLeases(session)
        await leases.claim(run.id, "worker-a", lease_s=60)
        assert await leases.succeed(run.id, "worker-a", document, series) is True

    async with database.session() as session:
        repo = RunRepository(session)
        stored = await repo.get(run.id)
        assert stored is not None
        assert (stored.status, stored.progress, stored.seed) == (RunStatus.SUCCEEDED, 1.0, 42)
        assert stored.finished_at is not None
        assert stored.lease_until is None

        results = await repo.get_results(run.id)
        assert results is not None
        assert "series" not in results["time_series"]
        assert results["time_series"]["sample_period_s"] == period
        assert results["time_series"]["components"] == {
            "ram_in_use": ["srv"],
            "edge_concurrent_connection": ["a", "b"],
        }
        assert results["requests"] == {"generated": 3}

        ram = await repo.get_series(run.id, metric="ram_in_use")
        assert [(s.metric, s.component, s.sample_period_s) for s in ram] == [
            ("ram_in_use", "srv", period)
        ]
        assert ram[0].values == series["ram_in_use"]["srv"]  # bit for bit
        one = await repo.get_series(run.id, component="b")
        assert [(s.metric, s.values) for s in one] == [("edge_concurrent_connection", [])]
        assert len(await repo.get_series(run.id)) == 3

        full = await repo.get_document(run.id)
        assert full is not None
        assert full["time_series"] == {"sample_period_s": period, "series": series}

        await repo.delete(run.id)
        assert await repo.get(run.id) is None
        for table in (RunResult, RunSeries):
            count = await session.scalar(select(func.count()).select_from(table))
            assert count == 0


async def test_delete_of_a_queued_run_leaves_nothing(database: Database) -> None:
    async with database.session() as session:
        repo = RunRepository(session)
        run = await repo.create(SCENARIO, seed=None)
        await repo.delete(run.id)
        assert await repo.get(run.id) is None
        _, total = await repo.list(status=None, limit=10, offset=0)
        assert total == 0


async def test_ping_tells_a_reachable_database_from_an_unreachable_one(database: Database) -> None:
    assert await database.ping() is True
    unreachable = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    try:
        assert await unreachable.ping(timeout_s=5) is False
    finally:
        await unreachable.dispose()
