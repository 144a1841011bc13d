"""Alembic migrations on real SQLite and Postgres: up, down, up again, matching the models."""

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from run_support import ASYNCFLOW
from sqlalchemy import JSON, column, inspect, table, text
from sqlalchemy.engine import Connection, make_url

from asyncflow_backend.db.migrate import downgrade, upgrade
from asyncflow_backend.db.models import Base
from asyncflow_backend.db.session import Database

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = {"runs", "run_results", "run_series", "experiments", "replication_results"}


def _inspect(url: str, look: Callable[[Connection], Any]) -> Any:
    async def run() -> Any:
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                return await connection.run_sync(look)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _indexes(connection: Connection) -> set[str]:
    return {index["name"] for index in inspect(connection).get_indexes("runs")}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables yet."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    make: Callable[[], str] = request.getfixturevalue("postgres_database")
    return make()


def test_migrations_go_up_down_and_up_again_and_match_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    assert _inspect(empty_database, _tables) == TABLES
    assert _inspect(empty_database, _differences) == []
    assert {"ix_runs_status", "ix_runs_created_at", "ix_runs_owner"} <= _inspect(
        empty_database, _indexes
    )

    downgrade(empty_database, "base")
    assert _inspect(empty_database, _tables) == set()

    upgrade(empty_database)
    assert _inspect(empty_database, _tables) == TABLES
    assert _inspect(empty_database, _differences) == []


def test_asyncflow_db_upgrade_migrates_the_configured_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "ASYNCFLOW_DATABASE_URL": url}
    done = subprocess.run(
        [str(ASYNCFLOW), "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "upgraded to head" in done.stdout
    assert _inspect(url, _tables) == TABLES


def _db_upgrade(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ASYNCFLOW), "db", "upgrade"],
        env={**os.environ, "ASYNCFLOW_DATABASE_URL": url},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_db_upgrade_of_a_missing_postgres_database_says_in_one_line_what_to_create(
    postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    name = f"asyncflow_missing_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_database()).set(database=name)
    done = _db_upgrade(url.render_as_string(hide_password=False), tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert f'database "{name}" does not exist' in line
    assert f"createdb -h {url.host} -p {url.port or 5432} -U {url.username} {name}" in line
    assert "Traceback" not in done.stderr


def test_db_upgrade_of_sqlite_in_a_missing_directory_says_in_one_line_what_to_create(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "absent"
    done = _db_upgrade(f"sqlite+aiosqlite:///{folder / 'asyncflow.db'}", tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"mkdir -p {folder}" in line


def test_the_alembic_command_finds_the_migrations_through_alembic_ini(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'alembic.db'}"
    alembic = ASYNCFLOW.with_name("alembic")
    done = subprocess.run(
        [
            str(alembic),
            "-c",
            str(REPO_ROOT / "alembic.ini"),
            "-x",
            f"database_url={url}",
            "upgrade",
            "head",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _inspect(url, _tables) == TABLES


def _one_replication(connection: Connection) -> None:
    """An experiment with a replication stored as 0003 stores it: overrides, no scenario."""
    spec = {"scenario": {"sim_settings": {"total_simulation_time": 10}, "rqs_input": {"id": "g"}}}
    experiments = table(
        "experiments",
        column("id"),
        column("status"),
        column("spec", JSON()),
        column("seed"),
        column("created_at"),
        column("replications_done"),
        column("replications_planned"),
    )
    runs = table(
        "runs",
        column("id"),
        column("status"),
        column("progress"),
        column("simulated_s"),
        column("created_at"),
        column("scenario", JSON()),
        column("overrides", JSON()),
        column("cancel_requested"),
        column("attempts"),
        column("experiment_id"),
        column("point_key"),
        column("replication"),
    )
    now = datetime.now(UTC)
    connection.execute(
        experiments.insert().values(
            id="e1",
            status="running",
            spec=spec,
            seed=1,
            created_at=now,
            replications_done=0,
            replications_planned=1,
        )
    )
    connection.execute(
        runs.insert().values(
            id="r1",
            status="queued",
            progress=0.0,
            simulated_s=0.0,
            created_at=now,
            scenario=None,
            overrides={"sim_settings.total_simulation_time": 20},
            cancel_requested=False,
            attempts=0,
            experiment_id="e1",
            point_key="k",
            replication=0,
        )
    )
    connection.commit()


def _scenario_of_r1(connection: Connection) -> Any:
    value = connection.execute(text("SELECT scenario FROM runs WHERE id = 'r1'")).scalar_one()
    return json.loads(value) if isinstance(value, str) else value


def test_going_back_below_0003_gives_each_replication_its_point_scenario(
    empty_database: str,
) -> None:
    upgrade(empty_database, "0003")
    _inspect(empty_database, _one_replication)

    downgrade(empty_database, "0002")

    assert _inspect(empty_database, _scenario_of_r1) == {
        "sim_settings": {"total_simulation_time": 20},
        "rqs_input": {"id": "g"},
    }
    upgrade(empty_database)
    assert _inspect(empty_database, _differences) == []
