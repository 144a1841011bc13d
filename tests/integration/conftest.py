"""Shared fixtures of the integration tests: real Postgres, Redis, SQLite and worker processes.

Every test session works in its own Postgres database (created here, dropped
at the end), every test in its own SQLite file and its own Redis key prefix,
so that runs of the suite cannot interfere. The servers are the ones on
loopback: PostgreSQL at 127.0.0.1:5432 (user postgres) and Redis at
127.0.0.1:6379, or TEST_POSTGRES_DSN and TEST_REDIS_URL if set.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
import redis
from api_server import ApiServer
from run_support import WorkerProcess
from sqlalchemy import text

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.db.session import Database

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def _admin(statement: str) -> None:
    """Run one statement on the server's maintenance database (from sync or async code)."""

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    # A thread of its own, so that this works inside a running event loop as well.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Callable[[], str]]:
    """Makes fresh, empty Postgres databases; all are dropped when the session ends."""
    created: list[str] = []

    def make() -> str:
        name = f"asyncflow_test_{uuid.uuid4().hex[:12]}"
        _admin(f'CREATE DATABASE "{name}"')
        created.append(name)
        base, _, _ = POSTGRES_DSN.rpartition("/")
        return _sqlalchemy_url(f"{base}/{name}")

    yield make
    for name in created:
        # FORCE ends the connections that worker processes may still hold.
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url(postgres_database: Callable[[], str]) -> str:
    """A Postgres database of this session, migrated to the latest revision."""
    url = postgres_database()
    upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite file of this test, migrated to the latest revision."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'asyncflow.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: each test runs once on SQLite and once on Postgres."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(text("TRUNCATE runs, run_results, run_series CASCADE"))
    finally:
        await database.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A `Database` on `database_url`, disposed after the test."""
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server; fails, rather than skips, if it does not answer."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def queue_name(redis_url: str) -> Iterator[str]:
    """A queue (and Redis key prefix) of this test only; its keys are deleted afterwards."""
    name = f"asyncflow_test_{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts `asyncflow worker` processes; stops those still running after the test."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, processes: int = 1) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log", processes)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def servers() -> Iterator[list[ApiServer]]:
    """API servers a test starts (append them here): each is stopped after the test."""
    started: list[ApiServer] = []
    yield started
    for server in started:
        server.stop()
