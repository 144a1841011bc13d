"""The embedded default starts on a database file that does not exist yet."""

from pathlib import Path

from fastapi.testclient import TestClient

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.main import create_app


def test_a_fresh_sqlite_file_is_migrated_at_start(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{database}", redis_url=None)

    with TestClient(create_app(settings)) as client:
        listing = client.get("/api/v1/simulations")
        ready = client.get("/ready")

    assert listing.status_code == 200
    assert listing.json()["total"] == 0
    assert ready.status_code == 200
    assert database.exists()
