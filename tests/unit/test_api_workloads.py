"""The API runs an inline arrival-rate trace and a closed workload, and refuses a trace file."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, sqlite_settings, wait_for

from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.schemas.results import SimulationResults
from support.scenarios import small_scenario

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("api"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


def with_workload(workload: dict[str, Any]) -> dict[str, Any]:
    return small_scenario(rqs_input={"id": SMALL_SCENARIO["rqs_input"]["id"], **workload})


async def results_of(client: httpx.AsyncClient, scenario: dict[str, Any]) -> SimulationResults:
    answer = await client.post("/api/v1/simulations", json=scenario)
    assert answer.status_code == 202, answer.text
    run = await wait_for(client, answer.json()["id"], {"succeeded"})
    document = (await client.get(f"/api/v1/simulations/{run['id']}/results")).json()
    return SimulationResults.model_validate(document)


async def test_an_inline_trace_runs(client: httpx.AsyncClient) -> None:
    trace = {
        "shape": "trace",
        "points": [{"at_s": 0, "rate_per_s": 2}, {"at_s": 30, "rate_per_s": 10}],
    }
    results = await results_of(client, with_workload({"arrival_rate": trace}))
    assert results.offered_load is not None
    assert results.offered_load.rate_per_s is not None
    assert results.offered_load.rate_per_s[0] == pytest.approx(2 + 8 / 60)
    assert results.requests.generated > 200


async def test_a_closed_workload_runs(client: httpx.AsyncClient) -> None:
    closed = {"users": 5, "think_time": {"mean": 0.5, "distribution": "exponential"}}
    results = await results_of(client, with_workload(closed))
    assert results.closed is not None
    assert results.closed.users_mean == 5


async def test_a_trace_file_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    scenario = with_workload({"arrival_rate": {"shape": "trace", "file": "rates.csv"}})
    answer = await client.post("/api/v1/simulations", json=scenario)
    assert answer.status_code == 422
    assert "rqs_input.arrival_rate" in answer.text
    assert "inline as `points`" in answer.text
