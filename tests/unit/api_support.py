"""An API on a temporary SQLite file with the local worker pool, and a client to call it."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.main import create_app

FINAL = {"succeeded", "failed", "cancelled"}


def sqlite_settings(directory: Path, **overrides: Any) -> Settings:
    """Settings for a migrated SQLite file in `directory` and a one-process local pool."""
    url = f"sqlite+aiosqlite:///{directory / 'api.db'}"
    upgrade(url)
    return Settings(database_url=url, redis_url=None, local_workers=1, **overrides)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` started (lifespan included) and a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a started API built from `settings`."""
    async with serving(create_app(settings)) as client:
        yield client


async def wait_for(
    client: httpx.AsyncClient, run_id: str, statuses: set[str], timeout_s: float = 120.0
) -> dict[str, Any]:
    """Poll the run until its status is one of `statuses`; fail if it ends elsewhere."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await client.get(f"/api/v1/simulations/{run_id}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        if run["status"] in statuses:
            return run
        assert run["status"] not in FINAL, f"run ended {run['status']}: {run['error']}"
        assert time.monotonic() < deadline, f"run still {run['status']} after {timeout_s} s"
        await asyncio.sleep(0.1)
