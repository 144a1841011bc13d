"""Every configurable limit, breached through the API, is refused with a 4xx naming its variable.

Each case lowers one limit below what the small example scenario needs (or
grows the scenario past it) and submits it; the wall-time limit, which only a
running simulation can breach, fails the run instead.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import api_client, wait_for

from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.config.settings import Settings
from support.documents import endpoint, spike
from support.scenarios import small_scenario

pytestmark = pytest.mark.asyncio(loop_scope="function")

Scenario = dict[str, Any]


def unchanged(scenario: Scenario) -> None:
    """The example scenario as it is: 2 nodes, 3 edges, 1 endpoint of 3 steps, 60 s."""


def second_endpoint(scenario: Scenario) -> None:
    server = scenario["topology_graph"]["nodes"]["servers"][0]
    server["endpoints"].append(endpoint("/b", *server["endpoints"][0]["steps"]))


def one_spike(scenario: Scenario) -> None:
    scenario["events"] = [spike("slow", "browser-api-1", start=10, end=20, spike_s=0.05)]


LIMITS: list[tuple[str, Any, Callable[[Scenario], None]]] = [
    ("max_nodes", 1, unchanged),
    ("max_edges", 2, unchanged),
    ("max_endpoints", 1, second_endpoint),
    ("max_steps", 2, unchanged),
    ("max_events", 0, one_spike),
    ("max_horizon_s", 30, unchanged),
    ("max_expected_requests", 100, unchanged),  # ~19 requests/s at the peak for 60 s
    ("max_samples", 1_000, unchanged),  # 600 ticks x 6 series
    ("max_scheduled_events", 1_000, unchanged),
]


def settings_for(directory: Path, **limits: Any) -> Settings:
    # The service migrates a fresh SQLite file when it starts.
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'api.db'}", redis_url=None, **limits
    )


@pytest.mark.parametrize(("limit", "value", "grow"), LIMITS, ids=[case[0] for case in LIMITS])
@pytest.mark.parametrize("path", ["/api/v1/simulations", "/api/v1/scenarios/validate"])
async def test_a_breached_scenario_limit_is_a_422_naming_it(
    tmp_path: Path, limit: str, value: Any, grow: Callable[[Scenario], None], path: str
) -> None:
    scenario = small_scenario()
    grow(scenario)
    async with api_client(settings_for(tmp_path, **{limit: value})) as client:
        answer = await client.post(path, json=scenario)
        listed = await client.get("/api/v1/simulations")

    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["type"] == "limit_exceeded", problem
    assert f"(ASYNCFLOW_{limit.upper()})" in problem["msg"]
    assert listed.json()["total"] == 0


async def test_a_body_over_the_limit_is_a_413_naming_it(tmp_path: Path) -> None:
    async with api_client(settings_for(tmp_path, max_body_bytes=500)) as client:
        answer = await client.post("/api/v1/simulations", json=SMALL_SCENARIO)

    assert answer.status_code == 413
    assert "ASYNCFLOW_MAX_BODY_BYTES" in answer.json()["detail"]


async def test_a_run_over_the_wall_time_limit_fails_naming_it(tmp_path: Path) -> None:
    # ~250,000 requests: many seconds
    scenario = small_scenario(horizon_s=5_000, sample_period_s=None, users=100)

    async with api_client(settings_for(tmp_path, run_time_limit_s=0.5)) as client:
        submitted = await client.post("/api/v1/simulations", json=scenario)
        assert submitted.status_code == 202
        run = await wait_for(client, submitted.json()["id"], {"failed"})

    assert run["error"] == "exceeded the wall-time limit of 0.5 s (ASYNCFLOW_RUN_TIME_LIMIT_S)"
    assert run["progress"] < 1.0
