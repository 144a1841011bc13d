"""Alembic environment: migrates the configured database, or a connection handed in.

The database is, in order: a connection passed in `config.attributes["connection"]`,
a URL in `config.attributes["database_url"]`, `-x database_url=...` on the
alembic command line, `sqlalchemy.url` in alembic.ini, else
`ASYNCFLOW_DATABASE_URL` (the service's own setting).
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from asyncflow_backend.db.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """The URL to migrate, by the precedence in the module docstring."""
    url = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("database_url")
        or config.get_main_option("sqlalchemy.url")
    )
    if url:
        return str(url)
    from asyncflow_backend.config.settings import get_settings

    return get_settings().database_url


def configure(connection: Connection) -> None:
    """Run the migrations on an open connection, in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode does that for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def migrate_async(url: str) -> None:
    """Open an async engine on `url` and migrate through it."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(configure)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    """Write the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate the shared connection if there is one, else open the configured database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
    else:
        asyncio.run(migrate_async(database_url()))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
