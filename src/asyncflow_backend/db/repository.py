"""Reading and changing runs on behalf of the API."""

import builtins
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from asyncflow_backend.db.models import Experiment, Run, RunResult, RunSeries, utc_now
from asyncflow_backend.db.storage import json_bytes
from asyncflow_backend.experiments.paths import PathError, with_overrides


class RunStatus(StrEnum):
    """Where a run stands. `succeeded`, `failed` and `cancelled` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True once the run will not change any more."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class RunRepository:
    """Runs as the API sees them: create, look up, list, cancel, read results.

    Methods that change data commit. `owner`, where accepted, restricts the
    lookup to that owner's runs; None means any owner.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, scenario: dict[str, Any], *, seed: int | None, owner: str | None = None
    ) -> Run:
        """Store a new queued run of `scenario` (a validated scenario as JSON data)."""
        run = Run(
            status=RunStatus.QUEUED.value,
            scenario=scenario,
            stored_bytes=json_bytes(scenario),
            seed=seed,
            owner=owner,
            created_at=utc_now(),
            progress=0.0,
            simulated_s=0.0,
            cancel_requested=False,
            attempts=0,
        )
        self.session.add(run)
        await self.session.commit()
        return run

    async def delete(self, run_id: str) -> None:
        """Remove a run and everything stored with it (used when the queue refuses a run)."""
        await self.session.execute(delete(RunSeries).where(RunSeries.run_id == run_id))
        await self.session.execute(delete(RunResult).where(RunResult.run_id == run_id))
        await self.session.execute(delete(Run).where(Run.id == run_id))
        await self.session.commit()

    async def get(self, run_id: str, *, owner: str | None = None) -> Run | None:
        """The run with this id (and this owner, if given), read fresh from the database."""
        query = select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
        if owner is not None:
            query = query.where(Run.owner == owner)
        result: Run | None = await self.session.scalar(query)
        return result

    async def list(
        self,
        *,
        status: RunStatus | None,
        limit: int,
        offset: int,
        owner: str | None = None,
    ) -> tuple[builtins.list[Run], int]:
        """One page of runs, newest first, and the number of runs that match in all.

        Replications of experiments are left out: their experiment lists them.
        """
        conditions: builtins.list[ColumnElement[bool]] = [Run.experiment_id.is_(None)]
        if status is not None:
            conditions.append(Run.status == status.value)
        if owner is not None:
            conditions.append(Run.owner == owner)
        return await newest_first(self.session, Run, conditions, limit, offset)

    async def request_cancel(self, run_id: str, *, owner: str | None = None) -> Run | None:
        """Ask a run to stop; returns the run as it now stands, or None if there is none.

        A queued run is cancelled at once, and so is a running run whose worker
        stopped reporting (its lease ran out). A live running run gets
        `cancel_requested`, which its worker reads within a progress report
        and then stops. Finished runs are left as they are.
        """
        run = await self.get(run_id, owner=owner)
        if run is None:
            return None
        now = utc_now()
        stopped = await self.session.execute(
            update(Run)
            .where(Run.id == run_id, unattended(now))
            .values(
                status=RunStatus.CANCELLED.value,
                cancel_requested=True,
                finished_at=now,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        if affected_rows(stopped) == 0:
            await self.session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.RUNNING.value)
                .values(cancel_requested=True)
                .execution_options(synchronize_session=False)
            )
        await self.session.commit()
        return await self.get(run_id)

    async def scenario_of(self, run: Run) -> dict[str, Any]:
        """The scenario `run` runs: its own, or a replication's (its experiment's, overridden)."""
        if run.scenario is not None:
            return run.scenario
        if run.experiment_id is None:
            return {}
        return await replication_scenario(self.session, run.experiment_id, run.overrides) or {}

    async def get_results(self, run_id: str) -> dict[str, Any] | None:
        """The results document without its sampled series, or None if there are no results.

        `time_series` keeps `sample_period_s` and gains `components`, which
        lists the stored series as {metric: [component ids]}; the values
        themselves come from `get_series`.
        """
        document: dict[str, Any] | None = await self.session.scalar(
            select(RunResult.document).where(RunResult.run_id == run_id)
        )
        return document

    async def get_series(
        self, run_id: str, *, metric: str | None = None, component: str | None = None
    ) -> builtins.list[RunSeries]:
        """Stored series of a run, optionally of one metric and/or one component."""
        query = select(RunSeries).where(RunSeries.run_id == run_id)
        if metric is not None:
            query = query.where(RunSeries.metric == metric)
        if component is not None:
            query = query.where(RunSeries.component == component)
        rows = await self.session.scalars(query.order_by(RunSeries.metric, RunSeries.component))
        return builtins.list(rows)

    async def get_document(self, run_id: str) -> dict[str, Any] | None:
        """The whole results document, series included, as `asyncflow run --json` writes it."""
        document = await self.get_results(run_id)
        if document is None:
            return None
        time_series = dict(document["time_series"])
        time_series.pop("components", None)
        series: dict[str, dict[str, builtins.list[float]]] = {}
        for row in await self.get_series(run_id):
            series.setdefault(row.metric, {})[row.component] = row.values
        time_series["series"] = series
        return {**document, "time_series": time_series}


async def replication_scenario(
    session: AsyncSession, experiment_id: str, overrides: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The scenario of a replication: its experiment's with `overrides` (path to value) set.

    None if the experiment is gone or its scenario lacks an overridden field.
    """
    spec: dict[str, Any] | None = await session.scalar(
        select(Experiment.spec).where(Experiment.id == experiment_id)
    )
    if spec is None:
        return None
    if not overrides:
        scenario: dict[str, Any] = spec["scenario"]
        return scenario  # freshly decoded: nobody else holds it, no copy needed
    try:
        return with_overrides(spec["scenario"], overrides)
    except PathError:
        return None


def unattended(now: datetime) -> ColumnElement[bool]:
    """Runs no live worker holds: queued, or running under a lease that ran out by `now`."""
    return or_(
        Run.status == RunStatus.QUEUED.value,
        and_(
            Run.status == RunStatus.RUNNING.value,
            or_(Run.lease_until.is_(None), Run.lease_until < now),
        ),
    )


def affected_rows(result: Any) -> int:
    """Rows an UPDATE or DELETE changed (the generic Result type does not declare it)."""
    count: int = result.rowcount
    return count


Listed = TypeVar("Listed", Run, Experiment)


async def newest_first(
    session: AsyncSession,
    model: type[Listed],
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    offset: int,
) -> tuple[list[Listed], int]:
    """One page of `model` rows matching `conditions`, newest first, and how many match."""
    total = await session.scalar(select(func.count()).select_from(model).where(*conditions))
    page = await session.scalars(
        select(model)
        .where(*conditions)
        .order_by(model.created_at.desc(), model.id.desc())
        .limit(limit)
        .offset(offset)
        .execution_options(populate_existing=True)
    )
    return list(page), int(total or 0)
