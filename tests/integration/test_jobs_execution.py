"""`execute_run` called directly, as a worker calls it, on real SQLite and Postgres."""

import asyncio
import threading
from typing import Any

import pytest
from dramatiq.middleware.threading import raise_thread_exception
from dramatiq.middleware.time_limit import TimeLimitExceeded
from run_support import LONG_RUN, make_scenario, wait_for_run

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import RunSeries
from asyncflow_backend.db.repository import RunRepository, RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs import Execution, execute_run
from asyncflow_backend.jobs.execution import Outcome
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.schemas.limits import sampled_series_count

pytestmark = pytest.mark.integration


async def _create(database: Database, scenario: dict[str, Any], seed: int | None = None) -> str:
    async with database.session() as session:
        run = await RunRepository(session).create(scenario, seed=seed)
    return run.id


async def _execute(database: Database, run_id: str, **settings: Any) -> Execution:
    # execute_run drives its own event loop, so it runs on a thread of its own, as in a worker.
    configured = Settings(database_url=str(database.url), **settings)
    return await asyncio.to_thread(execute_run, run_id, configured)


async def _run(database: Database, run_id: str) -> Any:
    async with database.session() as session:
        return await RunRepository(session).get(run_id)


async def test_a_run_executes_once_and_a_second_delivery_does_nothing(database: Database) -> None:
    scenario = make_scenario(horizon=20)
    run_id = await _create(database, scenario, seed=11)

    first = await _execute(database, run_id)
    finished = await _run(database, run_id)
    again = await _execute(database, run_id)

    assert (first.outcome, first.status) == (Outcome.FINISHED, RunStatus.SUCCEEDED)
    assert again == Execution(run_id, Outcome.SKIPPED)
    after = await _run(database, run_id)
    assert (after.status, after.attempts, after.seed) == (RunStatus.SUCCEEDED, 1, 11)
    assert after.finished_at == finished.finished_at
    async with database.session() as session:
        series = await RunRepository(session).get_series(run_id)
    assert len(series) == sampled_series_count(parse_scenario(scenario)) == 6


async def test_a_run_owned_under_a_live_lease_is_left_alone(database: Database) -> None:
    run_id = await _create(database, make_scenario(horizon=20))
    async with database.session() as session:
        await RunLeases(session).claim(run_id, "other-worker", lease_s=30)

    execution = await _execute(database, run_id)

    assert execution.outcome == Outcome.OWNED_ELSEWHERE
    assert execution.retry_after_s is not None
    assert 25 < execution.retry_after_s <= 31
    run = await _run(database, run_id)
    assert (run.status, run.worker_id, run.attempts) == (RunStatus.RUNNING, "other-worker", 1)


async def test_a_cancel_requested_before_a_redelivery_cancels_without_running(
    database: Database,
) -> None:
    run_id = await _create(database, make_scenario(horizon=20))
    async with database.session() as session:
        await RunLeases(session).claim(run_id, "dead-worker", lease_s=0.001)
        await asyncio.sleep(0.01)
        # The worker is gone (its lease ran out): the repository cancels at once.
        cancelled = await RunRepository(session).request_cancel(run_id)
    assert cancelled is not None
    assert cancelled.status == RunStatus.CANCELLED

    execution = await _execute(database, run_id)

    assert execution.outcome == Outcome.SKIPPED
    assert (await _run(database, run_id)).status == RunStatus.CANCELLED


async def test_a_run_that_keeps_killing_its_workers_is_given_up(database: Database) -> None:
    run_id = await _create(database, make_scenario(horizon=20))
    for attempt in range(2):
        async with database.session() as session:
            await RunLeases(session).claim(run_id, f"dying-worker-{attempt}", lease_s=0.001)
        await asyncio.sleep(0.01)

    execution = await _execute(database, run_id, max_attempts=2)

    assert (execution.outcome, execution.status) == (Outcome.FINISHED, RunStatus.FAILED)
    run = await _run(database, run_id)
    assert run.error == "gave up after 2 attempts that did not finish (ASYNCFLOW_MAX_ATTEMPTS)"


async def test_an_invalid_stored_scenario_fails_with_a_one_line_reason(
    database: Database,
) -> None:
    broken = make_scenario()
    broken["topology_graph"]["edges"][1]["target"] = "nowhere"
    run_id = await _create(database, broken)

    execution = await _execute(database, run_id)

    assert execution.status == RunStatus.FAILED
    run = await _run(database, run_id)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("invalid scenario: topology_graph.edges[1].target")
    assert "\n" not in run.error


async def test_an_unexpected_error_fails_the_run_with_one_line_and_no_traceback(
    database: Database,
) -> None:
    scenario = make_scenario()
    # Valid for the schema, but the engine cannot build it: a seed beyond what it accepts.
    run_id = await _create(database, scenario, seed=-1)

    execution = await _execute(database, run_id)

    run = await _run(database, run_id)
    assert execution.status == RunStatus.FAILED
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("ValueError: ")
    assert "\n" not in run.error
    assert "Traceback" not in run.error


async def test_the_queue_time_limit_backstop_fails_the_run_with_the_wall_time_reason(
    database: Database,
) -> None:
    run_id = await _create(database, make_scenario(**LONG_RUN))
    settings = Settings(database_url=str(database.url), run_time_limit_s=600)
    thread_ids: list[int] = []

    def work() -> Execution:
        thread_ids.append(threading.get_ident())
        return execute_run(run_id, settings, interrupts=(TimeLimitExceeded,))

    running = asyncio.create_task(asyncio.to_thread(work))
    await wait_for_run(database, run_id, lambda r: r.progress > 0)
    # What Dramatiq's TimeLimit middleware does when its own limit runs out.
    raise_thread_exception(thread_ids[0], TimeLimitExceeded)
    execution = await asyncio.wait_for(running, timeout=60)

    assert (execution.outcome, execution.status) == (Outcome.FINISHED, RunStatus.FAILED)
    run = await _run(database, run_id)
    assert run.error == "exceeded the wall-time limit of 600 s (ASYNCFLOW_RUN_TIME_LIMIT_S)"


async def test_results_that_cannot_be_stored_fail_the_run_at_once_with_the_reason(
    database: Database,
) -> None:
    # A row already holding one of the run's series: storing the results breaks a
    # unique constraint, as an over-long id broke a column's length on Postgres.
    # Nothing about it changes between attempts, so there must be only one.
    run_id = await _create(database, make_scenario(horizon=20), seed=5)
    async with database.session() as session:
        session.add(
            RunSeries(
                run_id=run_id,
                metric="ram_in_use",
                component="srv",
                sample_period_s=0.1,
                values=[0.0],
            )
        )
        await session.commit()

    execution = await _execute(database, run_id)

    assert (execution.outcome, execution.status) == (Outcome.FINISHED, RunStatus.FAILED)
    run = await _run(database, run_id)
    assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
    assert run.error.startswith("could not store the results: ")
    assert "unique" in run.error.lower()
    assert "INSERT" not in run.error  # the driver's reason, not the statement
    async with database.session() as session:
        assert await RunRepository(session).get_results(run_id) is None


def test_database_errors_are_told_apart_by_whether_a_retry_can_help() -> None:
    from sqlalchemy.exc import DataError, IntegrityError, OperationalError

    from asyncflow_backend.jobs.execution import is_transient

    assert is_transient(OperationalError("SELECT 1", {}, ConnectionRefusedError()))
    assert is_transient(ConnectionResetError())
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient(DataError("INSERT", {}, Exception("value too long")))
    assert not is_transient(ValueError("out of range"))
