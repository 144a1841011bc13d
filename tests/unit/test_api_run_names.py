"""Runs carry their scenario's name: in their status, the list, and their chart titles."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, sqlite_settings, wait_for

from asyncflow_backend.config.settings import Settings
from support.scenarios import small_scenario

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("names"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


def _named(name: str | None) -> dict[str, Any]:
    return small_scenario() if name is None else small_scenario(name=name)


async def test_the_scenario_name_wins_over_the_default(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/v1/simulations", params={"default_name": "file"}, json=_named("in the file")
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["name"] == "in the file"


async def test_the_default_name_is_stored_with_the_scenario(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/v1/simulations", params={"default_name": "  quickstart "}, json=_named(None)
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    assert answer.json()["name"] == "quickstart"
    scenario = (await client.get(f"/api/v1/simulations/{run_id}/scenario")).json()
    assert scenario["name"] == "quickstart"
    listed = (await client.get("/api/v1/simulations")).json()["items"]
    assert {"id": run_id, "name": "quickstart"}.items() <= next(
        r for r in listed if r["id"] == run_id
    ).items()


async def test_without_any_name_the_run_has_none(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/simulations", json=_named(None))
    assert answer.status_code == 202, answer.text
    assert answer.json()["name"] is None


@pytest.mark.parametrize("default_name", ["two\nlines", "x" * 121, "   "])
async def test_a_bad_default_name_is_a_422_naming_it(
    client: httpx.AsyncClient, default_name: str
) -> None:
    before = (await client.get("/api/v1/simulations")).json()["total"]
    answer = await client.post(
        "/api/v1/simulations", params={"default_name": default_name}, json=_named(None)
    )
    assert answer.status_code == 422
    assert "default_name" in answer.text
    assert (await client.get("/api/v1/simulations")).json()["total"] == before


async def test_charts_are_titled_with_the_name_and_the_seed(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/simulations", json=_named("titled <run>"))
    run_id = answer.json()["id"]
    run = await wait_for(client, run_id, {"succeeded"})
    svg = await client.get(f"/api/v1/simulations/{run_id}/plots/ram", params={"format": "svg"})
    assert svg.status_code == 200
    assert f"titled &lt;run&gt; · seed {run['seed']}" in svg.text
