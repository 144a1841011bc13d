"""Reading and changing experiments and their replication runs."""

import builtins
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from asyncflow_backend.db.models import Experiment, ReplicationResult, Run, utc_now
from asyncflow_backend.db.repository import RunStatus, newest_first, unattended
from asyncflow_backend.db.storage import json_bytes


@dataclass(frozen=True)
class RunState:
    """A replication run as its experiment's planner sees it."""

    id: str
    point_key: str
    replication: int
    status: str
    error: str | None
    progress: float
    attempts: int


ExperimentStatus = RunStatus
"""An experiment is `queued`, `running`, `succeeded`, `failed` or `cancelled`, like a run."""


class ExperimentRepository:
    """Experiments as the API and the planner see them. Methods that change data commit.

    `owner`, where accepted, restricts the lookup to that owner's experiments;
    None means any owner.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, spec: dict[str, Any], *, seed: int, owner: str | None) -> Experiment:
        """Store a new experiment (its document with the scenario inline), status `running`."""
        experiment = Experiment(
            status=RunStatus.RUNNING.value,
            spec=spec,
            stored_bytes=json_bytes(spec),
            seed=seed,
            owner=owner,
            created_at=utc_now(),
            replications_done=0,
            replications_planned=0,
        )
        self.session.add(experiment)
        await self.session.commit()
        return experiment

    async def get(self, experiment_id: str, *, owner: str | None = None) -> Experiment | None:
        """The experiment with this id (and owner, if given), read fresh."""
        query = (
            select(Experiment)
            .where(Experiment.id == experiment_id)
            .execution_options(populate_existing=True)
        )
        if owner is not None:
            query = query.where(Experiment.owner == owner)
        found: Experiment | None = await self.session.scalar(query)
        return found

    async def list(
        self, *, status: RunStatus | None, limit: int, offset: int, owner: str | None = None
    ) -> tuple[builtins.list[Experiment], int]:
        """One page of experiments, newest first, and how many match in all."""
        conditions = []
        if status is not None:
            conditions.append(Experiment.status == status.value)
        if owner is not None:
            conditions.append(Experiment.owner == owner)
        return await newest_first(self.session, Experiment, conditions, limit, offset)

    async def lock(self, experiment_id: str) -> Experiment | None:
        """Take the experiment's write lock for this transaction, and read it.

        A no-op UPDATE is the one lock both SQLite (the database's write lock)
        and Postgres (the row's) take the same way, so two planners never
        interleave on one experiment.
        """
        await self.session.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id)
            .values(replications_done=Experiment.replications_done)
            .execution_options(synchronize_session=False)
        )
        return await self.get(experiment_id)

    async def runs(self, experiment_id: str) -> builtins.list[RunState]:
        """Where each replication run of the experiment stands (not their scenarios)."""
        rows = await self.session.execute(
            select(
                Run.id,
                Run.point_key,
                Run.replication,
                Run.status,
                Run.error,
                Run.progress,
                Run.attempts,
            )
            .where(Run.experiment_id == experiment_id)
            .order_by(Run.point_key, Run.replication)
        )
        return [
            RunState(
                row.id,
                row.point_key or "",
                row.replication or 0,
                row.status,
                row.error,
                row.progress,
                row.attempts,
            )
            for row in rows
        ]

    async def replications(self, experiment_id: str) -> builtins.list[ReplicationResult]:
        """What each finished replication measured."""
        rows = await self.session.scalars(
            select(ReplicationResult).where(ReplicationResult.experiment_id == experiment_id)
        )
        return builtins.list(rows)

    async def replication_count(self, experiment_id: str) -> int:
        """How many of the experiment's replications have finished and been measured."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(ReplicationResult)
            .where(ReplicationResult.experiment_id == experiment_id)
        )
        return int(count or 0)

    async def stop_runs(self, experiment_id: str) -> None:
        """Cancel the experiment's unfinished runs (without committing).

        Runs no live worker holds are cancelled at once; running ones get
        `cancel_requested`, which their worker reads within a progress report.
        """
        now = utc_now()
        await self.session.execute(
            update(Run)
            .where(Run.experiment_id == experiment_id, unattended(now))
            .values(
                status=RunStatus.CANCELLED.value,
                cancel_requested=True,
                finished_at=now,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(Run)
            .where(Run.experiment_id == experiment_id, Run.status == RunStatus.RUNNING.value)
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )

    async def request_cancel(
        self, experiment_id: str, *, owner: str | None = None
    ) -> Experiment | None:
        """Cancel an unfinished experiment and all its runs; None if there is no such experiment.

        A finished experiment is left as it is.
        """
        experiment = await self.lock(experiment_id)
        if experiment is None or (owner is not None and experiment.owner != owner):
            await self.session.rollback()
            return None
        if not RunStatus(experiment.status).is_final:
            experiment.status = RunStatus.CANCELLED.value
            experiment.finished_at = utc_now()
            await self.stop_runs(experiment_id)
        await self.session.commit()
        return await self.get(experiment_id)

    async def unclaimed_runs(self, experiment_id: str) -> builtins.list[str]:
        """Ids of the experiment's queued runs no worker has started yet."""
        ids = await self.session.scalars(
            select(Run.id).where(
                Run.experiment_id == experiment_id,
                Run.status == RunStatus.QUEUED.value,
                Run.attempts == 0,
            )
        )
        return builtins.list(ids)

    async def unfinished_ids(self) -> builtins.list[str]:
        """Ids of experiments still running, oldest first."""
        ids = await self.session.scalars(
            select(Experiment.id)
            .where(Experiment.status == RunStatus.RUNNING.value)
            .order_by(Experiment.created_at)
        )
        return builtins.list(ids)
