"""The harness's own PostgreSQL database and Redis keys, made before a run and removed after.

The database is ``realsys_<random hex>`` on the server of ``admin_dsn`` (created with a table
``items`` of ``rows`` rows, primary key ``id``, for indexed queries); the Redis keys live in
their own db number under a random prefix, with ``key_space`` hot keys written beforehand so
that cache lookups of them hit. Removing drops the database (``WITH (FORCE)``, which ends the
connections left) and deletes the prefix's keys, never a whole db that others might share.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
DEFAULT_REDIS_DB = 13


@dataclass(frozen=True)
class Stores:
    """Where the services find their database and cache (None: not used by the topology)."""

    postgres_dsn: str | None
    redis_url: str | None
    redis_prefix: str


def _with_database(dsn: str, name: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}"


async def _create_database(admin_dsn: str, name: str, rows: int) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(_with_database(admin_dsn, name), timeout=10)
    try:
        await connection.execute("CREATE TABLE items (id integer PRIMARY KEY, payload text)")
        await connection.execute(
            "INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, $1) AS i", rows
        )
        await connection.execute("ANALYZE items")
    finally:
        await connection.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _redis(url: str, db: int):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(f"{url}/{db}")


@contextmanager
def stores(
    *,
    postgres: bool,
    redis_keys: int | None,
    admin_dsn: str = DEFAULT_POSTGRES_DSN,
    redis_url: str = DEFAULT_REDIS_URL,
    redis_db: int = DEFAULT_REDIS_DB,
    table_rows: int = 10_000,
) -> Iterator[Stores]:
    """Make the stores a topology needs, yield where they are, and remove them.

    ``redis_keys`` None means no Redis; otherwise that many hot keys are written first.
    """
    token = uuid.uuid4().hex[:12]
    database = f"realsys_{token}"
    prefix = f"realsys:{token}"
    client = _redis(redis_url, redis_db) if redis_keys is not None else None
    try:
        if postgres:
            asyncio.run(_create_database(admin_dsn, database, table_rows))
        if client is not None:
            with client.pipeline(transaction=False) as pipe:
                for key in range(redis_keys or 0):
                    pipe.set(f"{prefix}:hot:{key}", b"v")
                pipe.execute()
        yield Stores(
            postgres_dsn=_with_database(admin_dsn, database) if postgres else None,
            redis_url=f"{redis_url}/{redis_db}" if client is not None else None,
            redis_prefix=prefix,
        )
    finally:
        if postgres:
            asyncio.run(_drop_database(admin_dsn, database))
        if client is not None:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            client.close()
