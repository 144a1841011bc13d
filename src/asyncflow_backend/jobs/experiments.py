"""Experiments on the job queue: each replication is a run, and each finished run asks the plan.

`advance` replays the experiment's plan over its finished replications,
stores the report so far, and creates a queued run for every replication the
plan needs that has no run yet; the caller hands those runs to the queue like
any other. It is called when an experiment is submitted and after each of
its runs finishes, by whoever saw the run finish: the local pool's
dispatcher in the API process, or the `asyncflow worker` that executed it.
Runs carry the same lease and exactly-once guarantees as any run; the
experiment's write lock makes concurrent `advance` calls take turns, and a
unique (experiment, point, replication) key makes a replication's run unique.
"""

import asyncio
import logging
from typing import Any

from asyncflow_backend.db.experiments import ExperimentRepository, RunState
from asyncflow_backend.db.models import Experiment, Run, utc_now
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.experiments.measure import Replication
from asyncflow_backend.experiments.plan import Step, plan
from asyncflow_backend.experiments.prepare import (
    ExperimentValidationError,
    PreparedExperiment,
    restore,
)
from asyncflow_backend.experiments.report import ExperimentReport
from asyncflow_backend.experiments.seeds import replication_seed
from asyncflow_backend.schemas.limits import ScenarioLimits

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
DEFAULT_QUEUE_AHEAD = 100
"""Replications of one experiment queued or running at once (`ASYNCFLOW_EXPERIMENT_QUEUE_AHEAD`)."""


async def start_experiment(
    database: Database,
    spec: dict[str, Any],
    *,
    seed: int,
    owner: str | None,
    limits: ScenarioLimits | None = None,
    queue_ahead: int = DEFAULT_QUEUE_AHEAD,
    prepared: PreparedExperiment | None = None,
) -> tuple[Experiment, list[str]]:
    """Store a checked experiment and plan its first replications.

    `spec` is the experiment document, checked by `experiments.prepare`, with
    its scenario inline; `prepared`, if given, is that check's result, which
    spares parsing the scenario again. Returns the experiment and the ids of
    the runs to queue: at most `queue_ahead` of them.
    """
    async with database.session() as session:
        experiment = await ExperimentRepository(session).create(spec, seed=seed, owner=owner)
    run_ids = await advance(
        database, experiment.id, limits, queue_ahead=queue_ahead, prepared=prepared
    )
    return experiment, run_ids


async def advance(
    database: Database,
    experiment_id: str,
    limits: ScenarioLimits | None = None,
    *,
    queue_ahead: int = DEFAULT_QUEUE_AHEAD,
    prepared: PreparedExperiment | None = None,
) -> list[str]:
    """Bring the experiment up to date with its finished runs; returns the runs to queue.

    `limits` are the size limits a search's new points must keep. At most
    `queue_ahead` replications of the experiment are queued or running at a
    time: the plan's other replications are created as those finish, so
    neither a submission nor a call costs more with more replications.
    `prepared` is the experiment as `prepare` checked it, if at hand.

    Marks it succeeded once the plan needs nothing more, failed (cancelling the
    rest) if a replication failed, cancelled if a replication was cancelled.
    Does nothing to a finished or unknown experiment but refresh its report.
    """
    async with database.session() as session:
        repository = ExperimentRepository(session)
        experiment = await repository.lock(experiment_id)
        if experiment is None:
            await session.rollback()
            return []
        if RunStatus(experiment.status).is_final:
            # A replication may finish after a cancel: its result counts in the report.
            if await repository.replication_count(experiment_id) > experiment.replications_done:
                await _store_report(repository, experiment, limits)
                await session.commit()
            else:
                await session.rollback()
            return []
        runs = await repository.runs(experiment_id)
        if not _worth_planning(experiment, runs, queue_ahead):
            await session.rollback()
            return []
        stopped = _stopped_by(runs)
        if stopped is not None:
            status, error = stopped
            await _store_report(repository, experiment, limits)
            experiment.status = status.value
            experiment.error = error
            experiment.finished_at = utc_now()
            await repository.stop_runs(experiment_id)
            await session.commit()
            log.info("experiment %s: %s (%s)", experiment_id, status, error)
            return []
        replayed = await _replay(repository, experiment, limits, prepared)
        if isinstance(replayed, str):
            experiment.status = RunStatus.FAILED.value
            experiment.error = replayed
            experiment.finished_at = utc_now()
            await session.commit()
            return []
        prepared, step = replayed
        existing = {(run.point_key, run.replication) for run in runs}
        in_flight = sum(not RunStatus(run.status).is_final for run in runs)
        fresh = [need for need in step.needed if (need.point.key, need.index) not in existing]
        new_runs = [
            Run(
                status=RunStatus.QUEUED.value,
                scenario=None,
                overrides=need.point.overrides or None,
                seed=replication_seed(prepared.seed, need.index),
                owner=experiment.owner,
                created_at=utc_now(),
                progress=0.0,
                simulated_s=0.0,
                cancel_requested=False,
                attempts=0,
                experiment_id=experiment_id,
                point_key=need.point.key,
                replication=need.index,
            )
            for need in fresh[: max(0, queue_ahead - in_flight)]
        ]
        session.add_all(new_runs)
        _set_report(experiment, step.report)
        if step.report.complete:
            experiment.status = RunStatus.SUCCEEDED.value
            experiment.finished_at = utc_now()
            log.info("experiment %s: succeeded", experiment_id)
        await session.commit()
        return [run.id for run in new_runs]


async def cancel_experiment(
    database: Database,
    experiment_id: str,
    *,
    owner: str | None = None,
    limits: ScenarioLimits | None = None,
) -> Experiment | None:
    """Cancel an unfinished experiment and its runs, with its report brought up to date.

    The report then counts every replication that finished before the cancel,
    not only those of its last periodic refresh. Returns the experiment, or
    None if there is no such experiment (of this owner, if given).
    """
    async with database.session() as session:
        repository = ExperimentRepository(session)
        found = await repository.request_cancel(experiment_id, owner=owner)
        if found is None:
            return None
        experiment = await repository.lock(experiment_id)
        if experiment is not None:
            await _store_report(repository, experiment, limits)
        await session.commit()
        return await repository.get(experiment_id)


async def _replay(
    repository: ExperimentRepository,
    experiment: Experiment,
    limits: ScenarioLimits | None,
    prepared: PreparedExperiment | None = None,
) -> tuple[PreparedExperiment, Step] | str:
    """The plan replayed over the finished replications, or why the experiment is invalid.

    The replay (parsing the scenario and summarising every replication) is
    CPU work of tens of milliseconds or more: it runs on a thread, so that it
    never holds up the event loop it is called from.
    """
    rows = [
        (row.point_key, row.replication, row.document)
        for row in await repository.replications(experiment.id)
    ]
    return await asyncio.to_thread(
        _replay_rows, experiment.spec, experiment.seed, rows, limits, prepared
    )


def _replay_rows(
    spec: dict[str, Any],
    seed: int,
    rows: list[tuple[str, int, dict[str, Any]]],
    limits: ScenarioLimits | None,
    prepared: PreparedExperiment | None,
) -> tuple[PreparedExperiment, Step] | str:
    if prepared is None:
        try:
            prepared = restore(spec, seed, limits)
        except ExperimentValidationError as exc:
            return f"invalid experiment: {exc}"[:MAX_ERROR_CHARS]
    done: dict[str, dict[int, Replication]] = {}
    for point_key, index, document in rows:
        done.setdefault(point_key, {})[index] = Replication.model_validate(document)
    step = plan(prepared.spec, prepared.base, prepared.seed, done, prepared.metrics, prepared.check)
    return prepared, step


async def _store_report(
    repository: ExperimentRepository, experiment: Experiment, limits: ScenarioLimits | None
) -> None:
    """Refresh the stored report from every finished replication (without committing)."""
    replayed = await _replay(repository, experiment, limits)
    if not isinstance(replayed, str):
        _set_report(experiment, replayed[1].report)


def _set_report(experiment: Experiment, report: ExperimentReport) -> None:
    experiment.report = report.model_dump(mode="json")
    experiment.replications_done = report.replications_done
    experiment.replications_planned = report.replications_planned


REPORT_EVERY = 0.1
"""While runs are in flight, the report is refreshed once this fraction of them has finished."""


def _worth_planning(experiment: Experiment, runs: list[RunState], queue_ahead: int) -> bool:
    """Whether planning now can change anything worth its cost.

    Replaying the plan costs tens of milliseconds, which a worker would
    otherwise pay after every replication. The plan needs new runs only once
    all the runs of a point have finished, or once half of the `queue_ahead`
    runs in flight have finished while it has planned replications that have
    no run yet; the experiment ends only when nothing is in flight; otherwise
    it is replayed only to refresh the report, every REPORT_EVERY of the runs.
    Each call reads the runs after its own run's result was committed, so the
    last run of a point, and of the experiment, always sees it complete and plans.
    """
    stopped = {RunStatus.FAILED.value, RunStatus.CANCELLED.value}
    if any(run.status in stopped for run in runs):
        return True
    in_flight: dict[str, int] = {}
    finished: dict[str, int] = {}
    for run in runs:
        done = run.status == RunStatus.SUCCEEDED.value
        tally = finished if done else in_flight
        tally[run.point_key] = tally.get(run.point_key, 0) + 1
    if not in_flight:
        return True
    if experiment.replications_planned > len(runs) and sum(in_flight.values()) <= (
        queue_ahead // 2
    ):
        return True
    reported = {
        point["key"]: len(point["replications"])
        for point in (experiment.report or {}).get("points", [])
    }
    # A point whose batch is complete may need more replications (until precise, a search).
    if any(
        key not in in_flight and count > reported.get(key, 0) for key, count in finished.items()
    ):
        return True
    fresh = sum(finished.values()) - experiment.replications_done
    return fresh >= max(1, int(REPORT_EVERY * len(runs)))


def _stopped_by(runs: list[RunState]) -> tuple[RunStatus, str] | None:
    """Failed (with the first failure's reason) or cancelled, if a replication was."""
    for run in runs:
        if run.status == RunStatus.FAILED.value:
            error = f"replication {run.replication} of point {run.point_key} failed: {run.error}"
            return RunStatus.FAILED, error[:MAX_ERROR_CHARS]
    for run in runs:
        if run.status == RunStatus.CANCELLED.value:
            return RunStatus.CANCELLED, f"replication {run.replication} was cancelled"
    return None


async def unclaimed_runs(database: Database, experiment_id: str) -> list[str]:
    """The experiment's runs no worker has started: to queue again after a lost hand-over."""
    async with database.session() as session:
        return await ExperimentRepository(session).unclaimed_runs(experiment_id)
