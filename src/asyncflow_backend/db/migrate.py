"""Applying the Alembic migrations from code: `asyncflow db upgrade`, tests, app start-up.

The migration scripts live in this package (`asyncflow_backend/db/migrations`)
so that they are installed with it; alembic.ini at the repository root points
there too, for the `alembic` command.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError

from asyncflow_backend.db.session import Database

SCRIPT_LOCATION = "asyncflow_backend.db:migrations"
HEAD = "head"
INVALID_CATALOG_NAME = "3D000"
"""PostgreSQL's SQLSTATE for a database that does not exist (its "Error Codes" appendix)."""


class MissingDatabaseError(Exception):
    """The database to migrate does not exist; the message says, in one line, what to create."""


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
    """Migrate the database up to `revision`. Not from inside a running event loop.

    Raises `MissingDatabaseError` if the Postgres database or the SQLite
    file's directory does not exist: migrations create tables, not databases.
    """
    url = make_url(database_url or _configured_url())
    if url.get_backend_name() == "sqlite" and url.database:
        # Checked first: a failed SQLite connection leaves aiosqlite's thread
        # printing its own traceback after the event loop has closed.
        folder = Path(url.database).parent
        if not folder.is_dir():
            raise MissingDatabaseError(
                f"the SQLite database {url.database} is in a directory that does not exist: "
                f"create it first (mkdir -p {folder})"
            )
    try:
        command.upgrade(alembic_config(database_url), revision)
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != INVALID_CATALOG_NAME:
            raise
        raise MissingDatabaseError(_createdb_hint(url)) from error


def _configured_url() -> str:
    from asyncflow_backend.config.settings import get_settings

    return get_settings().database_url


def _createdb_hint(url: URL) -> str:
    """One line: the Postgres database of `url` does not exist, and the command that creates it."""
    host, port = url.host or "localhost", url.port or 5432
    createdb = f"createdb -h {host} -p {port}" + (f" -U {url.username}" if url.username else "")
    return (
        f'database "{url.database}" does not exist on {host}:{port}: create it first '
        f"({createdb} {url.database}), then run asyncflow db upgrade again"
    )


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
