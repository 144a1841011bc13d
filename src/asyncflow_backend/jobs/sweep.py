"""Queueing stranded runs again: the database, not the queue, says which runs are owed.

A queue can forget a run it accepted: Redis restarted without its data, a
message dead-lettered after the queue's own retries, a local pool that gave
up on a run. The run is then `queued` (or `running` under a lease that ran
out) with nothing that would ever execute it. The API sweeps for such runs
every `stranded_after_s / 2`: a run unattended for `stranded_after_s` that
the queue holds no message for is submitted again.

Submitting again is safe: the claim in `execute_run` lets one execution
through, and a message for a run that finished meanwhile does nothing.
"""

import asyncio
import logging
from datetime import timedelta

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.leases import RunLeases
from asyncflow_backend.db.models import utc_now
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs.dispatcher import JobDispatcher, QueueUnavailableError

log = logging.getLogger(__name__)


class StrandedRunSweeper:
    """Finds runs the database owes a result for and the queue forgot, and queues them again."""

    def __init__(self, settings: Settings, database: Database, dispatcher: JobDispatcher) -> None:
        self.settings = settings
        self.database = database
        self.dispatcher = dispatcher

    @property
    def interval_s(self) -> float:
        """Seconds between two sweeps."""
        return self.settings.stranded_after_s / 2

    async def sweep(self) -> list[str]:
        """Queue every stranded run again; returns their ids.

        The database is read before the queue: a run whose message is acked
        in between finished meanwhile, and its second message does nothing.
        Raises `QueueUnavailableError` or a database error if either is down.
        """
        cutoff = utc_now() - timedelta(seconds=self.settings.stranded_after_s)
        async with self.database.session() as session:
            candidates = await RunLeases(session).stranded_ids(cutoff)
        if not candidates:
            return []
        in_queue = await self.dispatcher.runs_in_queue()
        if in_queue is None:
            return []
        stranded = [run_id for run_id in candidates if run_id not in in_queue]
        for run_id in stranded:
            await self.dispatcher.submit(run_id)
        if stranded:
            log.warning(
                "%d run(s) had no message in the job queue and were queued again: %s",
                len(stranded),
                ", ".join(stranded[:10]) + (" ..." if len(stranded) > 10 else ""),
            )
        return stranded

    async def run(self) -> None:
        """Sweep every `interval_s` until cancelled; a failed sweep is logged and retried."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except QueueUnavailableError as exc:
                log.warning("stranded-run sweep skipped: %s", exc)
            except Exception:
                log.warning("stranded-run sweep failed; trying again later", exc_info=True)
