"""What a worker does to a run it executes: claim it, report under a lease, finish it once.

Every write is conditional on the worker still owning the run (status
`running` and its `worker_id`), so a worker that lost its run to another,
after its lease ran out, can no longer change it, and results are stored
at most once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from asyncflow_backend.db.models import (
    Experiment,
    ReplicationResult,
    Run,
    RunResult,
    RunSeries,
    utc_now,
)
from asyncflow_backend.db.repository import (
    RunStatus,
    affected_rows,
    replication_scenario,
    unattended,
)
from asyncflow_backend.db.storage import json_bytes
from asyncflow_backend.db.types import UTCDateTime


class LeaseLost(Exception):
    """The run is no longer this worker's: another worker took it over, or it was finished."""


@dataclass(frozen=True)
class Claim:
    """A run this worker now owns, with what it needs to execute it."""

    run_id: str
    worker_id: str
    scenario: dict[str, Any] | None
    """The scenario to run (a replication's: its experiment's with its overrides); None if the
    experiment's scenario no longer has a field the replication overrides."""
    seed: int | None
    cancel_requested: bool
    attempts: int
    experiment_id: str | None = None
    """Set when the run is replication `replication` of point `point_key` of an experiment."""
    point_key: str | None = None
    replication: int | None = None


@dataclass(frozen=True)
class OwnedElsewhere:
    """The run is running under another worker's lease, valid until `lease_until`."""

    lease_until: datetime


def _owned(run_id: str, worker_id: str) -> Any:
    return and_(Run.id == run_id, Run.status == RunStatus.RUNNING.value, Run.worker_id == worker_id)


class RunLeases:
    """Conditional writes of a worker on the runs it executes; each method commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, run_id: str, worker_id: str, lease_s: float
    ) -> Claim | OwnedElsewhere | None:
        """Take the run if it is queued, or running under a lease that ran out.

        One UPDATE does it, so two workers can never both succeed. Returns the
        claim, `OwnedElsewhere` if another worker holds a live lease, or None
        if there is nothing to do (no such run, or it is finished).
        """
        now = utc_now()
        claimed = await self.session.execute(
            update(Run)
            .where(Run.id == run_id, unattended(now))
            .values(
                status=RunStatus.RUNNING.value,
                worker_id=worker_id,
                lease_until=now + timedelta(seconds=lease_s),
                attempts=Run.attempts + 1,
                started_at=func.coalesce(Run.started_at, literal(now, UTCDateTime())),
            )
            .returning(
                Run.scenario,
                Run.overrides,
                Run.seed,
                Run.cancel_requested,
                Run.attempts,
                Run.experiment_id,
                Run.point_key,
                Run.replication,
            )
            .execution_options(synchronize_session=False)
        )
        row = claimed.one_or_none()
        await self.session.commit()
        if row is not None:
            scenario = row.scenario
            if scenario is None and row.experiment_id is not None:
                scenario = await replication_scenario(
                    self.session, row.experiment_id, row.overrides
                )
            return Claim(
                run_id,
                worker_id,
                scenario,
                row.seed,
                row.cancel_requested,
                row.attempts,
                row.experiment_id,
                row.point_key,
                row.replication,
            )
        current = (
            await self.session.execute(select(Run.status, Run.lease_until).where(Run.id == run_id))
        ).one_or_none()
        if current is not None and current.status == RunStatus.RUNNING.value:
            # Lost a race with another claim between the UPDATE and this read.
            return OwnedElsewhere(current.lease_until or now)
        return None

    async def record_seed(self, run_id: str, worker_id: str, seed: int) -> None:
        """Store the seed the run uses, so a retry and a replay use the same one."""
        await self._update_owned(run_id, worker_id, seed=seed)

    async def renew(
        self, run_id: str, worker_id: str, lease_s: float, *, progress: float, simulated_s: float
    ) -> bool:
        """Report progress and extend the lease; returns True if a cancel was requested.

        Raises `LeaseLost` if the run is no longer this worker's.
        """
        renewed = await self.session.execute(
            update(Run)
            .where(_owned(run_id, worker_id))
            .values(
                progress=progress,
                simulated_s=simulated_s,
                lease_until=utc_now() + timedelta(seconds=lease_s),
            )
            .returning(Run.cancel_requested)
            .execution_options(synchronize_session=False)
        )
        cancel_requested = renewed.scalar_one_or_none()
        await self.session.commit()
        if cancel_requested is None:
            raise LeaseLost(run_id)
        return bool(cancel_requested)

    async def succeed(
        self,
        run_id: str,
        worker_id: str,
        document: dict[str, Any],
        series: dict[str, dict[str, list[float]]],
        replication: dict[str, Any] | None = None,
    ) -> bool:
        """Store the results and mark the run succeeded, in one transaction.

        `document` is the results document without `time_series.series`, and
        `series` those series; `replication`, for a replication of an
        experiment, what it measured. Nothing is stored unless this worker
        still owns the run; returns whether it was stored.
        """
        meta = document["meta"]
        period = document["time_series"]["sample_period_s"]
        stored = {**document, "time_series": {**document["time_series"]}}
        stored["time_series"]["components"] = {
            metric: list(by_component) for metric, by_component in series.items()
        }
        samples = sum(
            len(values) for by_component in series.values() for values in by_component.values()
        )
        size = (
            json_bytes(stored)
            + 8 * samples
            + (0 if replication is None else json_bytes(replication))
        )
        finished = await self.session.execute(
            update(Run)
            .where(_owned(run_id, worker_id))
            .values(
                status=RunStatus.SUCCEEDED.value,
                progress=1.0,
                simulated_s=meta["simulated_seconds"],
                seed=meta["seed"],
                finished_at=utc_now(),
                lease_until=None,
                error=None,
                stored_bytes=Run.stored_bytes + size,
            )
            .execution_options(synchronize_session=False)
        )
        if affected_rows(finished) != 1:
            await self.session.rollback()
            return False
        if replication is not None:
            owner = await self.session.execute(
                select(Run.experiment_id, Run.point_key, Run.replication).where(Run.id == run_id)
            )
            row = owner.one()
            self.session.add(
                ReplicationResult(
                    run_id=run_id,
                    experiment_id=row.experiment_id,
                    point_key=row.point_key,
                    replication=row.replication,
                    document=replication,
                )
            )
        self.session.add(RunResult(run_id=run_id, document=stored))
        self.session.add_all(
            RunSeries(
                run_id=run_id,
                metric=metric,
                component=component,
                sample_period_s=period,
                values=values,
            )
            for metric, by_component in series.items()
            for component, values in by_component.items()
        )
        await self.session.commit()
        return True

    async def finish(
        self, run_id: str, worker_id: str, status: RunStatus, error: str | None = None
    ) -> bool:
        """Mark an owned run failed or cancelled; returns False if it was not this worker's."""
        if status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise ValueError(f"finish() records failures and cancellations, not {status}")
        return await self._update_owned(
            run_id,
            worker_id,
            status=status.value,
            error=error,
            finished_at=utc_now(),
            lease_until=None,
        )

    async def requeue_running(self) -> int:
        """Put every running run back in the queue; returns how many.

        Only for a single node whose executors all died with it (the local
        pool): there, nothing else can be running them.
        """
        requeued = await self.session.execute(
            update(Run)
            .where(Run.status == RunStatus.RUNNING.value)
            .values(status=RunStatus.QUEUED.value, worker_id=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        await self.session.commit()
        return affected_rows(requeued)

    async def release_process(self, worker_id_prefix: str) -> int:
        """End now the leases held by one dead process (its worker ids share the prefix).

        Only for a process known to be dead (its parent reaped it): its runs
        may then be claimed at once instead of when their leases run out.
        Returns how many runs were released.
        """
        released = await self.session.execute(
            update(Run)
            .where(
                Run.status == RunStatus.RUNNING.value,
                Run.worker_id.startswith(worker_id_prefix, autoescape=True),
            )
            .values(lease_until=utc_now())
            .execution_options(synchronize_session=False)
        )
        await self.session.commit()
        return affected_rows(released)

    async def stranded_ids(self, unattended_since: datetime) -> list[str]:
        """Ids of runs nobody has attended to since `unattended_since`, oldest first.

        That is: queued and created before it, or running under a lease that
        ran out before it. Whether a queue message still covers them is the
        caller's question (`jobs.sweep`).
        """
        ids = await self.session.scalars(
            select(Run.id)
            .where(
                or_(
                    and_(
                        Run.status == RunStatus.QUEUED.value,
                        Run.created_at < unattended_since,
                    ),
                    and_(
                        Run.status == RunStatus.RUNNING.value,
                        or_(Run.lease_until.is_(None), Run.lease_until < unattended_since),
                    ),
                )
            )
            .order_by(Run.created_at, Run.id)
        )
        return list(ids)

    async def queued_ids(self) -> list[str]:
        """Ids of queued runs, oldest first."""
        ids = await self.session.scalars(
            select(Run.id)
            .where(Run.status == RunStatus.QUEUED.value)
            .order_by(Run.created_at, Run.id)
        )
        return list(ids)

    async def experiment_spec(self, experiment_id: str) -> dict[str, Any] | None:
        """The document of an experiment (for a replication's warm-up), or None if it is gone."""
        spec: dict[str, Any] | None = await self.session.scalar(
            select(Experiment.spec).where(Experiment.id == experiment_id)
        )
        return spec

    async def experiment_of(self, run_id: str) -> str | None:
        """The experiment a run is a replication of, or None."""
        found: str | None = await self.session.scalar(
            select(Run.experiment_id).where(Run.id == run_id)
        )
        return found

    async def _update_owned(self, run_id: str, worker_id: str, **values: Any) -> bool:
        updated = await self.session.execute(
            update(Run)
            .where(_owned(run_id, worker_id))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        await self.session.commit()
        return affected_rows(updated) == 1
