"""Deleting runs and experiments, and the storage quota, on the embedded setup."""

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import api_client, sqlite_settings

from asyncflow_backend.config.settings import Settings
from support.scenarios import parsing_server

SCENARIO = parsing_server(users=20, horizon_s=5.0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path)


@pytest.fixture
def tight_quota(tmp_path: Path) -> Settings:
    # One stored scenario (about 1 KB) already fills a quota of 500 bytes.
    return sqlite_settings(tmp_path, storage_quota_mb=0.0005)


async def settled(client: httpx.AsyncClient, path: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        view: dict[str, Any] = (await client.get(path)).json()
        if view["status"] in {"succeeded", "failed", "cancelled"}:
            return view
        assert time.monotonic() < deadline, f"still {view['status']}"
        await asyncio.sleep(0.1)


def replication_ids(database: Path, experiment_id: str) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT id FROM runs WHERE experiment_id = ?", (experiment_id,))
        return [row[0] for row in rows]


async def test_delete_removes_a_run_and_an_experiment_with_its_replications(
    settings: Settings, tmp_path: Path
) -> None:
    async with api_client(settings) as client:
        run = (await client.post("/api/v1/simulations", json=SCENARIO)).json()
        await settled(client, f"/api/v1/simulations/{run['id']}")
        deleted = await client.delete(f"/api/v1/simulations/{run['id']}")
        gone = await client.get(f"/api/v1/simulations/{run['id']}/results")
        again = await client.delete(f"/api/v1/simulations/{run['id']}")

        document = {"scenario": SCENARIO, "seed": 2, "replications": 2}
        experiment = (await client.post("/api/v1/experiments", json=document)).json()
        path = f"/api/v1/experiments/{experiment['id']}"
        await settled(client, path)
        replications = replication_ids(tmp_path / "api.db", experiment["id"])
        refused = await client.delete(f"/api/v1/simulations/{replications[0]}")
        removed = await client.delete(path)
        after = await client.get(path)
        replication_after = await client.get(f"/api/v1/simulations/{replications[0]}")
        listed = (await client.get("/api/v1/experiments")).json()

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert gone.status_code == 404
    assert again.status_code == 404
    assert len(replications) == 2
    assert refused.status_code == 409
    assert "delete the experiment" in refused.json()["detail"]
    assert removed.status_code == 204
    assert after.status_code == 404
    assert replication_after.status_code == 404
    assert listed["total"] == 0
    assert replication_ids(tmp_path / "api.db", experiment["id"]) == []


async def test_a_key_over_its_storage_quota_is_refused_until_it_deletes(
    tight_quota: Settings,
) -> None:
    document = {"scenario": SCENARIO, "seed": 2, "replications": 2}
    async with api_client(tight_quota) as client:
        first = await client.post("/api/v1/simulations", json=SCENARIO)
        second = await client.post("/api/v1/simulations", json=SCENARIO)
        experiment = await client.post("/api/v1/experiments", json=document)
        await client.delete(f"/api/v1/simulations/{first.json()['id']}")
        third = await client.post("/api/v1/simulations", json=SCENARIO)

    assert first.status_code == 202
    assert second.status_code == 403
    assert "ASYNCFLOW_STORAGE_QUOTA_MB" in second.json()["detail"]
    assert experiment.status_code == 403
    assert third.status_code == 202
