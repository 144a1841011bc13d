"""Executing one run in a worker process: claim it, simulate under a lease, store the results once.

`execute_run` is what a worker runs for a message, in the local pool and in
`asyncflow worker` processes alike. It is synchronous: the simulation is
CPU-bound, and the few database writes between slices of simulated time go
through a private event loop.
"""

import asyncio
import contextlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.util import LRUCache

from asyncflow_backend.config.settings import ENV_PREFIX, Settings, get_settings
from asyncflow_backend.db.leases import Claim, LeaseLost, OwnedElsewhere, RunLeases
from asyncflow_backend.db.models import utc_now
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.db.session import Database
from asyncflow_backend.experiments.measure import ReplicationObserver
from asyncflow_backend.experiments.prepare import parse_experiment
from asyncflow_backend.runtime.memory import MemoryBudget, MemoryBudgetExceeded, release_memory
from asyncflow_backend.runtime.runner import (
    RunProgress,
    SimulationCancelled,
    SimulationRunner,
)
from asyncflow_backend.samplers.streams import draw_seed
from asyncflow_backend.schemas.limits import sampled_series_count
from asyncflow_backend.schemas.loading import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.scenario import Scenario

log = logging.getLogger(__name__)

T = TypeVar("T")

REPORT_INTERVAL_S = 0.5
"""Least wall time between two progress writes (each also renews the lease)."""

LEASE_RETRY_MARGIN_S = 1.0
MAX_ERROR_CHARS = 500
COMPILED_STATEMENTS: LRUCache[Any, Any] = LRUCache(500)
"""SQL compiled once per worker process rather than once per run."""


class Outcome(StrEnum):
    """What one call of `execute_run` did."""

    FINISHED = "finished"
    """This call took the run and left it succeeded, failed or cancelled."""
    SKIPPED = "skipped"
    """Nothing to do: no such run, or it was already finished."""
    OWNED_ELSEWHERE = "owned_elsewhere"
    """Another worker runs it under a live lease; look again after `retry_after_s`."""
    LOST = "lost"
    """The lease ran out mid-run and another worker took the run over; nothing was stored."""


@dataclass(frozen=True)
class Execution:
    """The result of one call of `execute_run`."""

    run_id: str
    outcome: Outcome
    status: RunStatus | None = None
    retry_after_s: float | None = None
    experiment_id: str | None = None
    """The experiment this run is a replication of: its plan may need more runs now."""


class WallTimeExceeded(Exception):
    """The run took longer than `run_time_limit_s` of wall time."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(wall_time_message(limit_s))


def wall_time_message(limit_s: float) -> str:
    """The error of a run stopped by the wall-time limit."""
    return f"exceeded the wall-time limit of {limit_s:g} s ({ENV_PREFIX}RUN_TIME_LIMIT_S)"


def one_line(exc: BaseException) -> str:
    """An exception as one short line for the run's `error`: its type and first line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line[:MAX_ERROR_CHARS]


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # connection refused or lost, server shutting down, deadlock, timeout
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,
)
"""Errors that say nothing about the run: another attempt may well succeed."""


def is_transient(exc: BaseException) -> bool:
    """True for an error of the database's availability rather than of the run's data.

    Constraint violations, out-of-range or too-long values and values the
    driver cannot encode (`IntegrityError`, `DataError`, `TypeError`...) are
    deterministic: the same results would fail the same way every time.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def reason(exc: BaseException) -> str:
    """The driver's own error for a database error (no SQL, no parameters), else `one_line`."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        # asyncpg's error hides behind the adapter's; aiosqlite's is the original.
        inner = exc.orig.__cause__ or exc.orig
        return one_line(inner)
    return one_line(exc)


def slices_for(scenario: Scenario) -> int:
    """How many slices to cut the horizon into, so each is a fraction of a second of work.

    Progress, the lease, cancellation and the wall-time limit are all handled
    between slices; slicing does not change the results.
    """
    horizon = scenario.sim_settings.total_simulation_time
    requests = horizon * scenario.peak_arrival_rate
    samples = horizon / scenario.sim_settings.sample_period_s * (1 + sampled_series_count(scenario))
    return max(200, min(20_000, math.ceil(requests / 2_000 + samples / 100_000)))


def replication_series(
    series: dict[str, dict[str, list[float]]], max_samples: int
) -> dict[str, dict[str, list[float]]]:
    """The sampled series a replication stores: all of them if they hold at most `max_samples`
    samples together, else none (its summary metrics are what its experiment reads)."""
    samples = sum(
        len(values) for by_component in series.values() for values in by_component.values()
    )
    return series if samples <= max_samples else {}


def new_worker_id() -> str:
    """Identifies one execution attempt: host, process and a random part."""
    return f"{worker_id_prefix(os.getpid())}{uuid.uuid4().hex[:8]}"


def worker_id_prefix(pid: int) -> str:
    """How the worker ids of every execution by process `pid` of this host begin."""
    return f"{socket.gethostname()}:{pid}:"


class DatabaseLoop:
    """A private event loop and database engine for synchronous code.

    One is kept per thread (`database_loop`) and serves every run that thread
    executes: opening an engine, and its first connection, per run would cost
    a few tens of milliseconds, which is several percent of a short replication.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        # A worker writes a few times a second: a ping per checkout costs it
        # nothing, and spares a run the failed write a stale connection would cause.
        # The statements compiled for one run serve the next (a few tens of ms each).
        self.database = Database(
            url, pool_pre_ping=True, execution_options={"compiled_cache": COMPILED_STATEMENTS}
        )

    def call(self, action: Callable[[RunLeases], Awaitable[T]]) -> T:
        """Run `action` with a fresh session and wait for it."""

        async def in_session() -> T:
            async with self.database.session() as session:
                return await action(RunLeases(session))

        return self.run(in_session())

    def run(self, work: Awaitable[T]) -> T:
        """Run a coroutine on this loop and wait for it."""
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        """Close the engine's connections and the loop."""
        try:
            self.loop.run_until_complete(self.database.dispose())
        finally:
            self.loop.close()


_per_thread = threading.local()


def database_loop(url: str) -> DatabaseLoop:
    """This thread's `DatabaseLoop` for `url`, made on first use and kept for the next runs.

    A thread keeps one: asking for another URL closes the previous one. A loop
    inherited through fork is left to the parent, whose sockets it shares.
    """
    current: DatabaseLoop | None = getattr(_per_thread, "loop", None)
    if current is not None and current.url == url and current.pid == os.getpid():
        return current
    if current is not None and current.pid == os.getpid():
        current.close()
    _per_thread.loop = DatabaseLoop(url)
    return _per_thread.loop  # type: ignore[no-any-return]


def discard_database_loop() -> None:
    """Forget this thread's loop without using it again: after an interrupt raised inside it."""
    current: DatabaseLoop | None = getattr(_per_thread, "loop", None)
    _per_thread.loop = None
    if current is not None and current.pid == os.getpid():
        with contextlib.suppress(Exception):
            current.loop.close()


class _Reporter:
    """The runner's progress callback: enforces the wall-time limit, reports, reads cancel."""

    def __init__(self, db: DatabaseLoop, claim: Claim, settings: Settings) -> None:
        self.db = db
        self.claim = claim
        self.settings = settings
        self.started = time.monotonic()
        self.last_report = self.started
        self.memory = MemoryBudget(settings.max_run_memory_mb)

    def __call__(self, progress: RunProgress) -> bool:
        now = time.monotonic()
        if now - self.started > self.settings.run_time_limit_s:
            raise WallTimeExceeded(self.settings.run_time_limit_s)
        self.memory.check()
        if now - self.last_report < REPORT_INTERVAL_S:
            return False
        self.last_report = now
        claim, lease_s = self.claim, self.settings.lease_s
        return self.db.call(
            lambda leases: leases.renew(
                claim.run_id,
                claim.worker_id,
                lease_s,
                progress=progress.fraction,
                simulated_s=progress.simulated_s,
            )
        )


def execute_run(
    run_id: str,
    settings: Settings | None = None,
    *,
    interrupts: tuple[type[BaseException], ...] = (),
) -> Execution:
    """Execute a stored run if it is this worker's to execute; safe to call any number of times.

    The run is claimed atomically (queued, or running under a lease that ran
    out), executed with progress reports that renew the lease, and finished
    as succeeded (results and series stored in the same transaction),
    failed (with a one-line reason) or cancelled, only while this worker
    still owns it. A call for a finished run, or one owned under a live
    lease, changes nothing.

    `interrupts` are exceptions a queue library raises into the worker when
    its own time limit, a backstop set above `run_time_limit_s`, runs out;
    they end the run as failed by the wall-time limit. Database errors
    outside a run propagate, so that the queue can retry the message.
    """
    settings = settings or get_settings()
    worker_id = new_worker_id()
    db = database_loop(settings.database_url)
    claim = db.call(lambda leases: leases.claim(run_id, worker_id, settings.lease_s))
    if claim is None:
        log.info("run %s: nothing to do (finished or unknown)", run_id)
        return Execution(run_id, Outcome.SKIPPED)
    if isinstance(claim, OwnedElsewhere):
        wait_s = (claim.lease_until - utc_now()).total_seconds()
        log.info("run %s: running elsewhere under a lease; looking again later", run_id)
        return Execution(
            run_id,
            Outcome.OWNED_ELSEWHERE,
            retry_after_s=max(0.0, wait_s) + LEASE_RETRY_MARGIN_S,
        )
    log.info("run %s: claimed by %s (attempt %d)", run_id, worker_id, claim.attempts)
    try:
        return _execute(db, claim, settings)
    except interrupts:
        # The queue's backstop fired inside this loop's machinery: record on a fresh one.
        discard_database_loop()
        error = wall_time_message(settings.run_time_limit_s)
        return _finish(database_loop(settings.database_url), claim, RunStatus.FAILED, error)


def _finish(db: DatabaseLoop, claim: Claim, status: RunStatus, error: str | None) -> Execution:
    recorded = db.call(lambda leases: leases.finish(claim.run_id, claim.worker_id, status, error))
    if not recorded:
        return Execution(claim.run_id, Outcome.LOST)
    log.info("run %s: %s%s", claim.run_id, status, f" ({error})" if error else "")
    return Execution(claim.run_id, Outcome.FINISHED, status, experiment_id=claim.experiment_id)


def _replication_observer(
    db: DatabaseLoop, claim: Claim, runner: SimulationRunner
) -> ReplicationObserver | None:
    """For a replication of an experiment, what measures it after its warm-up; else None."""
    experiment_id = claim.experiment_id
    if experiment_id is None:
        return None
    spec = db.call(lambda leases: leases.experiment_spec(experiment_id)) or {}
    return ReplicationObserver(
        runner, spec.get("warmup_s", 0.0), parse_experiment(spec).windowed() if spec else ()
    )


def _execute(db: DatabaseLoop, claim: Claim, settings: Settings) -> Execution:
    if claim.attempts > settings.max_attempts:
        error = (
            f"gave up after {claim.attempts - 1} attempts that did not finish "
            f"({ENV_PREFIX}MAX_ATTEMPTS)"
        )
        return _finish(db, claim, RunStatus.FAILED, error)
    if claim.cancel_requested:
        return _finish(db, claim, RunStatus.CANCELLED, None)
    if claim.scenario is None:
        return _finish(db, claim, RunStatus.FAILED, "its experiment's scenario is gone")
    try:
        scenario = parse_scenario(claim.scenario)
    except ScenarioValidationError as exc:
        reasons = "; ".join(str(problem) for problem in exc.problems[:3])
        error = f"invalid scenario: {reasons}"[:MAX_ERROR_CHARS]
        return _finish(db, claim, RunStatus.FAILED, error)

    requested = claim.seed if claim.seed is not None else scenario.seed
    seed: int = draw_seed() if requested is None else requested
    if claim.seed is None:
        db.call(lambda leases: leases.record_seed(claim.run_id, claim.worker_id, seed))
    over_budget: str | None = None
    try:
        runner = SimulationRunner(scenario, seed=seed)
        reporter = _Reporter(db, claim, settings)
        observer = _replication_observer(db, claim, runner)
        results = runner.run(reporter, slices=slices_for(scenario))
    except SimulationCancelled:
        return _finish(db, claim, RunStatus.CANCELLED, None)
    except LeaseLost:
        log.warning("run %s: lease lost to another worker; stopping", claim.run_id)
        return Execution(claim.run_id, Outcome.LOST)
    except WallTimeExceeded as exc:
        return _finish(db, claim, RunStatus.FAILED, str(exc))
    except MemoryBudgetExceeded as exc:
        over_budget = str(exc)
    except Exception as exc:
        if is_transient(exc):
            raise  # the queue retries the message; the run is claimed again after its lease
        log.exception("run %s failed", claim.run_id)
        return _finish(db, claim, RunStatus.FAILED, one_line(exc))
    if over_budget is not None:
        # Out of the handler, nothing refers to the stopped run any more: free it before
        # this process takes the next run.
        log.warning("run %s: %s", claim.run_id, over_budget)
        del runner, observer
        release_memory()
        return _finish(db, claim, RunStatus.FAILED, over_budget)

    try:
        document = results.model_dump(mode="json", exclude={"time_series": {"series"}})
        series = results.time_series.series
        if claim.experiment_id is not None:
            series = replication_series(series, settings.max_replication_samples)
        replication = (
            None
            if observer is None or claim.replication is None
            else observer.measure(claim.replication, results).model_dump(mode="json")
        )
        stored = db.call(
            lambda leases: leases.succeed(
                claim.run_id, claim.worker_id, document, series, replication
            )
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        # The same results would fail the same way on every attempt: say why, now.
        log.exception("run %s: its results could not be stored", claim.run_id)
        return _finish(db, claim, RunStatus.FAILED, f"could not store the results: {reason(exc)}")
    if not stored:
        return Execution(claim.run_id, Outcome.LOST)
    log.info("run %s: succeeded in %.2f s", claim.run_id, results.meta.wall_seconds)
    return Execution(
        claim.run_id, Outcome.FINISHED, RunStatus.SUCCEEDED, experiment_id=claim.experiment_id
    )
