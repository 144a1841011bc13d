"""What routes receive: the settings, a database session's repository and the dispatcher.

The lifespan builds one `Service` per application and keeps it on
`app.state`; these dependencies hand out its parts, so routes never build
infrastructure themselves and tests can swap the whole `Service`.
"""

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from asyncflow_backend.api.chart_cache import ChartCache
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.repository import RunRepository
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs import JobDispatcher

logger = logging.getLogger(__name__)


class Limiter(Protocol):
    """Counts submissions per caller (`api.rate_limit.SubmissionLimiter`)."""

    async def hit(self, caller: str, cost: int = 1) -> None:
        """Spend `cost` units of `caller`'s allowance; raises when not that many are left."""

    async def close(self) -> None:
        """Release its connections."""


@dataclass(frozen=True)
class Service:
    """The long-lived parts of a running API; `limiter` is None when submissions are unlimited,
    and `charts` keeps rendered charts."""

    settings: Settings
    database: Database
    dispatcher: JobDispatcher
    limiter: Limiter | None = None
    charts: ChartCache = field(default_factory=lambda: ChartCache(0))


def get_service(request: Request) -> Service:
    """The `Service` the lifespan stored on the application."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_settings(service: ServiceDep) -> Settings:
    """The application's settings."""
    return service.settings


def get_dispatcher(service: ServiceDep) -> JobDispatcher:
    """Where accepted runs are sent for execution."""
    return service.dispatcher


async def _closing(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Yield `session`, then close it.

    Closing runs after the answer is sent, so it must not raise: if the
    connection died meanwhile, the request has already answered 503 (or
    succeeded before the failure), and the pool discards the dead connection.
    """
    try:
        yield session
    finally:
        try:
            await session.close()
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("closing a database session failed: %r", exc)


async def get_session(service: ServiceDep) -> AsyncIterator[AsyncSession]:
    """One database session per request, closed when the request ends."""
    async for session in _closing(service.database.session()):
        yield session


async def get_autocommit_session(service: ServiceDep) -> AsyncIterator[AsyncSession]:
    """One session per request whose statements commit on their own, closed at the end."""
    async for session in _closing(service.database.autocommit()):
        yield session


async def get_repository(session: Annotated[AsyncSession, Depends(get_session)]) -> RunRepository:
    """Runs stored in the request's session."""
    return RunRepository(session)


async def get_autocommit_repository(
    session: Annotated[AsyncSession, Depends(get_autocommit_session)],
) -> RunRepository:
    """Runs for routes whose reads and writes are each one statement."""
    return RunRepository(session)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DispatcherDep = Annotated[JobDispatcher, Depends(get_dispatcher)]
RepositoryDep = Annotated[RunRepository, Depends(get_repository)]
AutocommitRepositoryDep = Annotated[RunRepository, Depends(get_autocommit_repository)]
"""Runs for routes that read, or write with one statement (storing a new run): each
statement commits on its own, which spares two round trips per request. Methods that
must change several rows together (`request_cancel`) need `RepositoryDep`."""
