"""The embedded executor: a process pool inside the API process, for a single node.

Runs go to `local_workers` spawned processes, never to the API's event loop.
The pool lives and dies with the API process, so nothing else can be running
this node's runs: at start-up, runs left `running` by a previous process are
put back in the queue and every queued run is submitted again, and the same
happens if a pool process dies and breaks the pool.
"""

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs.dispatcher import QueueUnavailableError
from asyncflow_backend.jobs.execution import Execution, execute_run
from asyncflow_backend.jobs.experiments import advance
from asyncflow_backend.jobs.orphans import die_with_parent
from asyncflow_backend.jobs.worker import lower_priority

log = logging.getLogger(__name__)

RECOVERY_MAX_DELAY_S = 60.0
MAX_ERROR_RETRIES = 5


class LocalPoolDispatcher:
    """Executes runs in a `ProcessPoolExecutor` of spawned processes owned by this process."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self._pool: ProcessPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broken_pool: ProcessPoolExecutor | None = None
        self._recovering = False
        self._breaks_in_a_row = 0
        self._error_retries: dict[str, int] = {}
        # Runs handed to the pool and not yet done with, or waiting to be handed again.
        self._in_pool: set[str] = set()

    async def start(self) -> None:
        """Start the pool, then resume what a previous process of this node left behind."""
        self._loop = asyncio.get_running_loop()
        self._pool = self._new_pool()
        await self._resume()

    async def stop(self) -> None:
        """Stop the pool, ending runs in progress; they are queued again for the next start."""
        pool, self._pool, self._loop = self._pool, None, None
        if pool is None:
            return
        _shutdown_now(pool)
        async with self.database.session() as session:
            await RunLeases(session).requeue_running()

    async def submit(self, run_id: str) -> None:
        """Hand a stored run to the pool."""
        pool = self._pool
        if pool is None and self._recovering:
            return  # the run is queued in the database; the new pool will take it
        if pool is None:
            raise QueueUnavailableError("the local worker pool is not running")
        try:
            future = pool.submit(execute_run, run_id, self.settings)
        except (BrokenProcessPool, RuntimeError) as exc:
            raise QueueUnavailableError(f"the local worker pool is unavailable: {exc}") from exc
        self._in_pool.add(run_id)
        future.add_done_callback(lambda done: self._on_done(done, pool, run_id))

    async def ping(self) -> bool:
        """True while the pool can take runs (False while it is being replaced)."""
        return self._pool is not None and self._pool is not self._broken_pool

    async def runs_in_queue(self) -> set[str] | None:
        """Runs handed to the pool and not done with; None while the pool is replaced."""
        if not await self.ping():
            return None
        return set(self._in_pool)

    def _new_pool(self) -> ProcessPoolExecutor:
        # Spawned, not forked: a fork of the API would inherit its event loop,
        # threads and open connections. At a low CPU priority, so that the API stays responsive.
        return ProcessPoolExecutor(
            max_workers=self.settings.local_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_pool_process,
            initargs=(os.getpid(), self.settings.worker_nice, self.settings.worker_sched_idle),
        )

    async def _resume(self) -> None:
        async with self.database.session() as session:
            leases = RunLeases(session)
            requeued = await leases.requeue_running()
            queued = await leases.queued_ids()
        if requeued:
            log.warning("%d interrupted run(s) queued again", requeued)
        for run_id in queued:
            await self.submit(run_id)
        # Replications may have finished after the last plan, as this node stopped.
        async with self.database.session() as session:
            experiments = await ExperimentRepository(session).unfinished_ids()
        for experiment_id in experiments:
            await self.advance(experiment_id)

    def _on_done(self, future: "Future[Execution]", pool: ProcessPoolExecutor, run_id: str) -> None:
        # Called on a thread of the pool: hand anything to do to the event loop.
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            self._broken_pool = pool
            self._call_soon(lambda: self._schedule_recovery(pool))
        elif error is not None:
            # execute_run raises only when it cannot reach the database: try again later.
            self._call_soon(lambda: self._retry_after_error(run_id, error))
        else:
            self._breaks_in_a_row = 0
            self._error_retries.pop(run_id, None)
            execution = future.result()
            if execution.retry_after_s is not None:
                delay = execution.retry_after_s
                self._call_soon(lambda: self._resubmit_later(execution.run_id, delay))
            else:
                self._call_soon(lambda: self._in_pool.discard(run_id))
            experiment_id = execution.experiment_id
            if experiment_id is not None:
                self._call_soon(lambda: self._advance_soon(experiment_id))

    def _advance_soon(self, experiment_id: str) -> None:
        task = asyncio.ensure_future(self.advance(experiment_id))
        task.add_done_callback(_log_failure)

    async def advance(self, experiment_id: str) -> None:
        """Let an experiment plan its next replications after one finished, and queue them."""
        planned = await advance(
            self.database,
            experiment_id,
            self.settings.limits(),
            queue_ahead=self.settings.experiment_queue_ahead,
        )
        for run_id in planned:
            await self.submit(run_id)

    def _call_soon(self, callback: Callable[[], object]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # The loop may close meanwhile, when the API shuts down.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    def _schedule_recovery(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is not broken or self._loop is None:
            return  # already replaced, or stopped
        # Back off if pools keep breaking (a process that dies on every start).
        delay_s = min(RECOVERY_MAX_DELAY_S, 2.0**self._breaks_in_a_row - 1)
        self._breaks_in_a_row += 1
        log.error("a worker process died; restarting the local pool in %g s", delay_s)
        self._pool, self._recovering = None, True
        broken.shutdown(wait=False, cancel_futures=True)
        self._loop.call_later(delay_s, self._recover)

    def _recover(self) -> None:
        self._recovering = False
        if self._loop is None:
            return  # stopped meanwhile
        self._pool = self._new_pool()
        self._in_pool.clear()
        task = asyncio.ensure_future(self._resume())
        task.add_done_callback(_log_failure)

    def _retry_after_error(self, run_id: str, error: BaseException) -> None:
        retries = self._error_retries.get(run_id, 0) + 1
        if retries > MAX_ERROR_RETRIES:
            self._error_retries.pop(run_id, None)
            self._in_pool.discard(run_id)  # the stranded-run sweep will try again
            log.error("run %s could not be executed, left queued: %s", run_id, error)
            return
        self._error_retries[run_id] = retries
        delay_s = 2.0**retries
        log.warning("run %s could not be executed (%s); retrying in %g s", run_id, error, delay_s)
        self._resubmit_later(run_id, delay_s)

    def _resubmit_later(self, run_id: str, delay_s: float) -> None:
        def resubmit() -> None:
            task = asyncio.ensure_future(self.submit(run_id))
            task.add_done_callback(_log_failure)

        if self._loop is not None:
            self._loop.call_later(delay_s, resubmit)


def start_pool_process(parent_pid: int, niceness: int, sched_idle: bool) -> None:
    """Initializer of each pool process: end with the API process, run at a low priority."""
    die_with_parent(parent_pid)
    lower_priority(niceness, sched_idle)


def _log_failure(task: "asyncio.Future[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the local pool could not resubmit runs: %s", task.exception())


def _shutdown_now(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down and end its processes, busy or not."""
    # ProcessPoolExecutor has no public way to end busy workers before Python 3.14
    # (terminate_workers), and a simulation may run for minutes, longer than a
    # shutdown should wait. Its processes must be read before shutdown forgets them.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
