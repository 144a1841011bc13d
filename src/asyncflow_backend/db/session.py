"""The async database: one engine and a session factory per process."""

import asyncio
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout makes writers
    # queue for the lock instead of failing; SQLite leaves foreign keys off
    # unless asked, and the results tables rely on ON DELETE CASCADE.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """An async engine and its session factories for one database URL.

    `session()` returns a new `AsyncSession`; use it as an async context
    manager (`async with database.session() as session:`), which closes it.
    Sessions do not expire objects on commit, so a committed `Run` can be
    read after its session is gone. `autocommit()` is the same for work of
    single statements: reads, and writes that one statement does.

    A server database keeps `pool_size` connections open (and opens up to
    `MAX_OVERFLOW` more at peaks), so that busy moments do not pay for new
    connections. Connections are not pinged on their way out of the pool:
    with asyncpg a ping is three round trips (it runs in a transaction of its
    own), which cost the API a tenth of its time per request. Instead, the
    first statement that finds the database gone makes SQLAlchemy replace
    every pooled connection; that request answers 503, the next ones are
    served on fresh connections.
    """

    MAX_OVERFLOW = 10

    def __init__(self, url: str, *, pool_size: int = 5, **engine_options: Any) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if not self.is_sqlite:
            engine_options.setdefault("pool_size", pool_size)
            engine_options.setdefault("max_overflow", self.MAX_OVERFLOW)
        self.engine = create_async_engine(self.url, **engine_options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Each statement commits on its own: no BEGIN and COMMIT (or ROLLBACK)
        # round trips around a single statement. Reads see committed data only.
        self._autocommit_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    def session(self) -> AsyncSession:
        """A new session; the caller closes it (best with `async with`)."""
        return self._sessions()

    def autocommit(self) -> AsyncSession:
        """A new session whose statements each commit on their own, in no transaction."""
        return self._autocommit_sessions()

    async def ping(self, timeout_s: float = 5.0) -> bool:
        """True if the database answers a trivial query within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the reason is not the caller's concern
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
