"""The retention sweep: runs and experiments finished `ASYNCFLOW_RETENTION_DAYS` ago are deleted.

The API runs it in the background, once at start-up and then every
`INTERVAL_S`, when the setting is above 0. Deleting goes in batches, each its
own short transaction, so that the sweep never holds the database's write
lock (SQLite) or many row locks (Postgres) for long.
"""

import asyncio
import logging
from datetime import timedelta

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.models import utc_now
from asyncflow_backend.db.session import Database
from asyncflow_backend.db.storage import Storage

log = logging.getLogger(__name__)

INTERVAL_S = 3600.0
BATCH = 200
"""Runs, and experiments, deleted per transaction."""


class RetentionSweeper:
    """Deletes what finished more than `retention_days` ago."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    async def sweep(self) -> int:
        """Delete every run and experiment past retention; returns how many went."""
        cutoff = utc_now() - timedelta(days=self.settings.retention_days)
        total = 0
        while True:
            async with self.database.session() as session:
                deleted = await Storage(session).delete_finished_before(cutoff, BATCH)
            total += deleted
            if deleted == 0:
                break
        if total:
            log.info(
                "retention: deleted %d run(s) and experiment(s) finished before %s", total, cutoff
            )
        return total

    async def run(self) -> None:
        """Sweep now and every `INTERVAL_S` until cancelled; a failed sweep is retried later."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.warning("retention sweep failed; trying again later", exc_info=True)
            await asyncio.sleep(INTERVAL_S)
