"""Submissions and validations are limited per API key (per address when open): 429."""

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, sqlite_settings

from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.api.rate_limit import _storage_uri
from asyncflow_backend.config.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEYS = ("first-key-5d1c", "second-key-9ae0", "third-key-77b2")
# Long runs that stay queued behind each other: the test is about accepting them.
QUEUED = {**SMALL_SCENARIO, "sim_settings": {"total_simulation_time": 2_000}}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(
        tmp_path_factory.mktemp("rate"), api_keys=",".join(KEYS), submit_rate_limit="3/minute"
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


async def submit(client: httpx.AsyncClient, key: str, body: object = QUEUED) -> httpx.Response:
    return await client.post("/api/v1/simulations", json=body, headers={"X-API-Key": key})


async def test_a_key_over_its_allowance_gets_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    accepted = [await submit(client, KEYS[0]) for _ in range(3)]
    refused = await submit(client, KEYS[0])

    assert [a.status_code for a in accepted] == [202, 202, 202]
    assert refused.status_code == 429
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert "ASYNCFLOW_SUBMIT_RATE_LIMIT" in refused.json()["detail"]
    assert "3/minute" in refused.json()["detail"]
    listed = await client.get("/api/v1/simulations", headers={"X-API-Key": KEYS[0]})
    assert listed.json()["total"] == 3  # the refused one was not stored


async def test_each_key_has_its_own_allowance(client: httpx.AsyncClient) -> None:
    answer = await submit(client, KEYS[1])

    assert answer.status_code == 202


async def test_invalid_submissions_use_the_allowance_too(client: httpx.AsyncClient) -> None:
    # Checking a scenario costs CPU as well: a flood of bad ones is limited like good ones.
    answers = [(await submit(client, KEYS[1], {"nonsense": True})).status_code for _ in range(3)]

    assert answers == [422, 422, 429]


async def test_reading_is_not_limited(client: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": KEYS[0]}
    for _ in range(5):
        assert (await client.get("/api/v1/simulations", headers=headers)).status_code == 200


async def test_validating_uses_the_same_allowance(client: httpx.AsyncClient) -> None:
    # Validation parses and checks as much as a submission does, so it costs the same.
    headers = {"X-API-Key": KEYS[2]}
    answers = [
        (await client.post("/api/v1/scenarios/validate", json=QUEUED, headers=headers)).status_code
        for _ in range(2)
    ]
    answers.append((await submit(client, KEYS[2])).status_code)
    refused = await client.post("/api/v1/scenarios/validate", json=QUEUED, headers=headers)

    assert answers == [200, 200, 202]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


@pytest.fixture(scope="module")
def open_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("open-rate"), submit_rate_limit="1/minute")


async def test_an_open_api_limits_each_client_address(open_settings: Settings) -> None:
    async with api_client(open_settings) as client:
        first = await client.post("/api/v1/simulations", json=QUEUED)
        second = await client.post("/api/v1/simulations", json=QUEUED)

    assert (first.status_code, second.status_code) == (202, 429)


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("redis://127.0.0.1:6379/0", "async+redis://127.0.0.1:6379/0"),
        ("rediss://cache.example:6380", "async+rediss://cache.example:6380"),
        ("unix:///run/redis.sock?db=1", "async+redis+unix:///run/redis.sock?db=1"),
    ],
)
async def test_the_redis_url_becomes_the_limits_storage_uri(url: str, uri: str) -> None:
    assert _storage_uri(url) == uri
