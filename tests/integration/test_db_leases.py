"""Claims and leases on real SQLite and Postgres: one owner at a time, results stored once."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from run_support import make_scenario
from sqlalchemy import func, select, update

from asyncflow_backend.db.leases import Claim, LeaseLost, OwnedElsewhere, RunLeases
from asyncflow_backend.db.models import Run, RunResult
from asyncflow_backend.db.repository import RunRepository, RunStatus
from asyncflow_backend.db.session import Database

pytestmark = pytest.mark.integration

DOCUMENT = {
    "time_series": {"sample_period_s": 0.1},
    "meta": {"seed": 3, "simulated_seconds": 60.0, "wall_seconds": 0.1},
}
SERIES = {"ram_in_use": {"srv": [1.0, 2.0]}}


async def _new_run(database: Database) -> str:
    async with database.session() as session:
        run = await RunRepository(session).create(make_scenario(), seed=None)
    return run.id


async def _get(database: Database, run_id: str) -> Run:
    async with database.session() as session:
        run = await RunRepository(session).get(run_id)
    assert run is not None
    return run


async def _expire_lease(database: Database, run_id: str) -> None:
    async with database.session() as session:
        await session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()


async def test_a_claim_marks_the_run_running_under_a_lease(database: Database) -> None:
    run_id = await _new_run(database)
    async with database.session() as session:
        claim = await RunLeases(session).claim(run_id, "worker-a", lease_s=30)

    assert isinstance(claim, Claim)
    assert (claim.attempts, claim.seed, claim.cancel_requested) == (1, None, False)
    assert claim.scenario == make_scenario()
    run = await _get(database, run_id)
    assert (run.status, run.worker_id, run.attempts) == (RunStatus.RUNNING, "worker-a", 1)
    assert run.started_at is not None
    assert run.lease_until is not None
    assert timedelta(seconds=25) < run.lease_until - datetime.now(UTC) <= timedelta(seconds=30)


async def test_only_one_of_many_concurrent_claims_wins(database: Database) -> None:
    run_id = await _new_run(database)

    async def claim(worker: str) -> Claim | OwnedElsewhere | None:
        async with database.session() as session:
            return await RunLeases(session).claim(run_id, worker, lease_s=30)

    claims = await asyncio.gather(*(claim(f"worker-{i}") for i in range(8)))

    winners = [c for c in claims if isinstance(c, Claim)]
    assert len(winners) == 1
    assert all(isinstance(c, OwnedElsewhere) for c in claims if c is not winners[0])
    run = await _get(database, run_id)
    assert (run.worker_id, run.attempts) == (winners[0].worker_id, 1)


async def test_a_live_lease_keeps_others_out_and_an_expired_one_lets_them_in(
    database: Database,
) -> None:
    run_id = await _new_run(database)
    async with database.session() as session:
        leases = RunLeases(session)
        await leases.claim(run_id, "worker-a", lease_s=30)
        busy = await leases.claim(run_id, "worker-b", lease_s=30)
    assert isinstance(busy, OwnedElsewhere)
    assert busy.lease_until > datetime.now(UTC)

    await _expire_lease(database, run_id)
    async with database.session() as session:
        leases = RunLeases(session)
        taken = await leases.claim(run_id, "worker-b", lease_s=30)
        assert isinstance(taken, Claim)
        assert taken.attempts == 2
        # The first worker finds out at its next report and can store nothing.
        with pytest.raises(LeaseLost):
            await leases.renew(run_id, "worker-a", 30, progress=0.5, simulated_s=30)
        assert await leases.succeed(run_id, "worker-a", DOCUMENT, SERIES) is False
        assert await leases.finish(run_id, "worker-a", RunStatus.FAILED, "late") is False
        assert await leases.succeed(run_id, "worker-b", DOCUMENT, SERIES) is True

    run = await _get(database, run_id)
    assert (run.status, run.worker_id, run.error) == (RunStatus.SUCCEEDED, "worker-b", None)


async def test_finished_runs_cannot_be_claimed_nor_stored_twice(database: Database) -> None:
    run_id = await _new_run(database)
    async with database.session() as session:
        leases = RunLeases(session)
        await leases.claim(run_id, "worker-a", lease_s=30)
        assert await leases.succeed(run_id, "worker-a", DOCUMENT, SERIES) is True
        assert await leases.claim(run_id, "worker-b", lease_s=30) is None
        assert await leases.succeed(run_id, "worker-a", DOCUMENT, SERIES) is False
        assert await leases.claim("0" * 32, "worker-b", lease_s=30) is None
        results = await session.scalar(select(func.count()).select_from(RunResult))
    assert results == 1
    assert (await _get(database, run_id)).attempts == 1


async def test_renew_reports_progress_extends_the_lease_and_reads_cancellation(
    database: Database,
) -> None:
    run_id = await _new_run(database)
    async with database.session() as session:
        leases = RunLeases(session)
        await leases.claim(run_id, "worker-a", lease_s=1)
        first = (await _get(database, run_id)).lease_until
        cancel = await leases.renew(run_id, "worker-a", 60, progress=0.25, simulated_s=15)
    assert cancel is False
    run = await _get(database, run_id)
    assert (run.progress, run.simulated_s) == (0.25, 15)
    assert first is not None
    assert run.lease_until is not None
    assert run.lease_until > first

    async with database.session() as session:
        await RunRepository(session).request_cancel(run_id)
        cancel = await RunLeases(session).renew(
            run_id, "worker-a", 60, progress=0.5, simulated_s=30
        )
        assert cancel is True
        assert await RunLeases(session).finish(run_id, "worker-a", RunStatus.CANCELLED)
    assert (await _get(database, run_id)).status == RunStatus.CANCELLED


async def test_requeue_running_puts_interrupted_runs_back_in_the_queue_in_order(
    database: Database,
) -> None:
    first, second, third = [await _new_run(database) for _ in range(3)]
    async with database.session() as session:
        leases = RunLeases(session)
        await leases.claim(first, "dead-worker", lease_s=600)
        await leases.claim(third, "dead-worker", lease_s=600)
        assert await leases.requeue_running() == 2
        assert await leases.queued_ids() == [first, second, third]
        again = await leases.claim(first, "worker-b", lease_s=30)
    assert isinstance(again, Claim)
    assert again.attempts == 2
