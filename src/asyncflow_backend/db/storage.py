"""What is stored, and removing it: deleting runs and experiments, the quota, retention.

A run's `stored_bytes` counts its scenario when it is created, and its
results document, sampled series (8 bytes a sample) and replication summary
when it succeeds; an experiment's counts its document. They are what the
database holds for them, give or take its own overhead, and are what the
per-key storage quota adds up.
"""

import builtins
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from asyncflow_backend.db.models import Experiment, ReplicationResult, Run, RunResult, RunSeries


def json_bytes(document: Any) -> int:
    """Bytes of `document` as compact JSON: what a JSON column of it about takes."""
    return len(json.dumps(document, separators=(",", ":")))


class Deleted(StrEnum):
    """What became of a request to delete a run."""

    DELETED = "deleted"
    NOT_FOUND = "not_found"
    REPLICATION = "replication"
    """The run is a replication of an experiment: only the whole experiment can be deleted."""


class Storage:
    """Deletions and storage accounting on one session; methods that change data commit.

    `owner`, where accepted, restricts the rows to that owner's; None means any owner.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_run(self, run_id: str, *, owner: str | None = None) -> Deleted:
        """Remove a run, its results and its series, whatever its status.

        A worker still executing it finds it gone at its next progress report
        and stops; nothing it writes afterwards is stored.
        """
        query = select(Run.experiment_id).where(Run.id == run_id)
        if owner is not None:
            query = query.where(Run.owner == owner)
        found = (await self.session.execute(query)).one_or_none()
        if found is None:
            return Deleted.NOT_FOUND
        if found.experiment_id is not None:
            return Deleted.REPLICATION
        await self._delete_runs([run_id])
        await self.session.commit()
        return Deleted.DELETED

    async def delete_experiment(self, experiment_id: str, *, owner: str | None = None) -> bool:
        """Remove an experiment with every replication run and everything they stored.

        Returns False if there is no such experiment (of this owner).
        """
        query = select(Experiment.id).where(Experiment.id == experiment_id)
        if owner is not None:
            query = query.where(Experiment.owner == owner)
        if await self.session.scalar(query) is None:
            return False
        await self._delete_experiments([experiment_id])
        await self.session.commit()
        return True

    async def used_bytes(self, owner: str | None) -> int:
        """What the runs and experiments of `owner` store (None: of everyone), in bytes."""
        runs = select(func.coalesce(func.sum(Run.stored_bytes), 0))
        experiments = select(func.coalesce(func.sum(Experiment.stored_bytes), 0))
        if owner is not None:
            runs = runs.where(Run.owner == owner)
            experiments = experiments.where(Experiment.owner == owner)
        return int(await self.session.scalar(runs) or 0) + int(
            await self.session.scalar(experiments) or 0
        )

    async def delete_finished_before(self, cutoff: datetime, batch: int) -> int:
        """Delete up to `batch` runs and `batch` experiments that finished before `cutoff`.

        Replications go with their experiment. Returns how many rows went.
        """
        runs = builtins.list(
            await self.session.scalars(
                select(Run.id)
                .where(Run.experiment_id.is_(None), _finished_before(Run.finished_at, cutoff))
                .limit(batch)
            )
        )
        experiments = builtins.list(
            await self.session.scalars(
                select(Experiment.id)
                .where(_finished_before(Experiment.finished_at, cutoff))
                .limit(batch)
            )
        )
        await self._delete_runs(runs)
        await self._delete_experiments(experiments)
        await self.session.commit()
        return len(runs) + len(experiments)

    async def _delete_runs(self, run_ids: builtins.list[str]) -> None:
        if not run_ids:
            return
        # Explicit rather than by ON DELETE CASCADE alone, so that SQLite and
        # Postgres do the same work whatever a connection's foreign-key setting.
        await self.session.execute(delete(RunSeries).where(RunSeries.run_id.in_(run_ids)))
        await self.session.execute(delete(RunResult).where(RunResult.run_id.in_(run_ids)))
        await self.session.execute(delete(Run).where(Run.id.in_(run_ids)))

    async def _delete_experiments(self, experiment_ids: builtins.list[str]) -> None:
        if not experiment_ids:
            return
        replications = select(Run.id).where(Run.experiment_id.in_(experiment_ids))
        await self.session.execute(delete(RunSeries).where(RunSeries.run_id.in_(replications)))
        await self.session.execute(delete(RunResult).where(RunResult.run_id.in_(replications)))
        await self.session.execute(
            delete(ReplicationResult).where(ReplicationResult.experiment_id.in_(experiment_ids))
        )
        await self.session.execute(delete(Run).where(Run.experiment_id.in_(experiment_ids)))
        await self.session.execute(delete(Experiment).where(Experiment.id.in_(experiment_ids)))


def _finished_before(column: Any, cutoff: datetime) -> ColumnElement[bool]:
    finished: ColumnElement[bool] = column.is_not(None) & (column < cutoff)
    return finished
