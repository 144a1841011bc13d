"""The tables: a run, its results document and its sampled time series; experiments."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from asyncflow_backend.db.types import Float64Array, UTCDateTime

# Named constraints let migrations alter them, which SQLite's batch mode needs.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_run_id() -> str:
    """A fresh run id: 32 hex digits of a random UUID."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base of the run tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    """One submitted simulation and where it stands.

    A replication of an experiment stores no scenario of its own: it runs its
    experiment's with its point's `overrides`, so that an experiment's
    scenario is stored once however many replications it has.

    `seed` is the requested seed until the run is first started, then the seed
    it uses, so that a finished run can be replayed. `worker_id` and
    `lease_until` say which worker owns a running run and until when: a worker
    renews its lease as it reports progress, and a run whose lease ran out may
    be claimed by another worker.
    """

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("experiment_id", "point_key", "replication"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_run_id)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    simulated_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    scenario: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    """The scenario as accepted; None for a replication, which runs its experiment's."""
    overrides: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    """A replication's fields of its point (dotted path to value) over its experiment's scenario."""
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    experiment_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    """Set when the run is replication `replication` of point `point_key` of an experiment."""
    point_key: Mapped[str | None] = mapped_column(Text)
    replication: Mapped[int | None] = mapped_column(Integer)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """About what the run takes in the database: its scenario, then also its results and series."""


class Experiment(Base):
    """Many runs of one scenario and their aggregate (see `asyncflow_backend.experiments`).

    `spec` is the experiment document with its scenario inline; `seed` its root
    seed. `report` is the latest report, partial while the experiment runs.
    Its replications are runs whose `experiment_id` is this id.
    """

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_run_id)
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    seed: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """About what the experiment's document takes (its replications count as runs)."""
    replications_done: Mapped[int] = mapped_column(Integer, default=0)
    replications_planned: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class ReplicationResult(Base):
    """What one replication measured (an `experiments.Replication`), stored with its results."""

    __tablename__ = "replication_results"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    experiment_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    point_key: Mapped[str] = mapped_column(Text)
    replication: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class RunResult(Base):
    """The results document of a succeeded run, less its sampled series (see `RunSeries`)."""

    __tablename__ = "run_results"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class RunSeries(Base):
    """One sampled series of a run: `values[k]` was read at t = k * sample_period_s."""

    __tablename__ = "run_series"
    __table_args__ = (UniqueConstraint("run_id", "metric", "component"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(64))
    component: Mapped[str] = mapped_column(String(255))
    sample_period_s: Mapped[float] = mapped_column(Float)
    values: Mapped[list[float]] = mapped_column("samples", Float64Array)
