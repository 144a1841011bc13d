"""The submission rate limit is one count in Redis, shared by every API process."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest
import redis
from fastapi import FastAPI
from run_support import make_scenario

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.migrate import upgrade
from asyncflow_backend.main import create_app

pytestmark = pytest.mark.integration

KEYS = ("team-a-2f9c41", "team-b-8e07d3")


@pytest.fixture
def settings(postgres_database: Callable[[], str], redis_url: str) -> Iterator[Settings]:
    """Two keys allowed 4 submissions a minute each, on a fresh database and queue."""
    url = postgres_database()
    upgrade(url)
    queue = f"asyncflow_test_{uuid.uuid4().hex[:12]}"
    yield Settings(
        database_url=url,
        redis_url=redis_url,
        queue_name=queue,
        api_keys=",".join(KEYS),
        submit_rate_limit="4/minute",
    )
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{queue}:*"))
        assert any(b"submit-rate" in key for key in keys), "the counts were not kept in Redis"
        client.delete(*keys)
    finally:
        client.close()


async def _started(stack: AsyncExitStack, app: FastAPI, key: str) -> httpx.AsyncClient:
    await stack.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    return await stack.enter_async_context(
        httpx.AsyncClient(transport=transport, base_url="http://api", headers={"X-API-Key": key})
    )


Clients = Callable[[str], Awaitable[list[httpx.AsyncClient]]]


@pytest.fixture
async def two_apis(settings: Settings) -> AsyncIterator[Clients]:
    """Makes clients of two separate API applications (as two processes would be)."""
    async with AsyncExitStack() as stack:
        apps = [create_app(settings), create_app(settings)]

        async def clients(key: str) -> list[httpx.AsyncClient]:
            return [await _started(stack, app, key) for app in apps]

        yield clients


async def test_two_api_processes_share_each_keys_allowance(two_apis: Clients) -> None:
    first, second = await two_apis(KEYS[0])
    scenario = make_scenario(rate=10, horizon=5)

    statuses = [
        (await api.post("/api/v1/simulations", json=scenario)).status_code
        for api in (first, second, first, second)
    ]
    over_first = await first.post("/api/v1/simulations", json=scenario)
    over_second = await second.post("/api/v1/simulations", json=scenario)

    assert statuses == [202, 202, 202, 202]
    for refused in (over_first, over_second):
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "ASYNCFLOW_SUBMIT_RATE_LIMIT" in refused.json()["detail"]
    assert (await first.get("/api/v1/simulations")).json()["total"] == 4

    other_first, other_second = await two_apis(KEYS[1])
    assert (await other_second.post("/api/v1/simulations", json=scenario)).status_code == 202
    assert (await other_first.get("/api/v1/simulations")).json()["total"] == 1
