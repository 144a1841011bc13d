"""Applying the Alembic migrations from code: `asyncflow db upgrade`, tests, app start-up.

The migration scripts live in this package (`asyncflow_backend/db/migrations`)
so that they are installed with it; alembic.ini at the repository root points
there too, for the `alembic` command.
"""

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from asyncflow_backend.db.session import Database

SCRIPT_LOCATION = "asyncflow_backend.db:migrations"
HEAD = "head"


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic configuration for this package's migrations.

    `database_url` None means the configured `ASYNCFLOW_DATABASE_URL`.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if database_url is not None:
        # Through attributes rather than options: a URL may hold `%`, which
        # the ini-style options would interpolate.
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = HEAD) -> None:
    """Migrate the database up to `revision`. Not from inside a running event loop."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None, revision: str) -> None:
    """Migrate the database down to `revision` (`base` removes every table)."""
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_database(database: Database, revision: str = HEAD) -> None:
    """Migrate through an open `Database`, from async code (for example at app start-up)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(run)
