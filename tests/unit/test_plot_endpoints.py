"""Chart images of a run: PNG and SVG of every chart, events shaded, 404 and 409 answers."""

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, sqlite_settings, wait_for

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.plots import PLOT_NAMES, render_plot
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults
from support.documents import spike
from support.scenarios import small_scenario

pytestmark = pytest.mark.asyncio(loop_scope="module")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
EVENTS = [
    spike("slow-entry", "visitors-browser", start=8.0, end=12.0, spike_s=0.02),
    spike("slow-link", "browser-api-1", start=15.0, end=18.0, spike_s=0.05),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("plots"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run_id(client: httpx.AsyncClient) -> str:
    """A succeeded run of the scenario with events."""
    answer = await client.post(
        "/api/v1/simulations", json=small_scenario(horizon_s=24, events=EVENTS)
    )
    assert answer.status_code == 202, answer.text
    run = await wait_for(client, answer.json()["id"], {"succeeded"})
    return str(run["id"])


def plot_path(run_id: str, name: str) -> str:
    return f"/api/v1/simulations/{run_id}/plots/{name}"


@pytest.mark.parametrize("name", PLOT_NAMES)
async def test_every_chart_is_served_as_png(
    client: httpx.AsyncClient, run_id: str, name: str
) -> None:
    answer = await client.get(plot_path(run_id, name))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(PNG_SIGNATURE)
    assert f'filename="{run_id}-{name}.png"' in answer.headers["content-disposition"]


async def test_png_is_the_chart_of_the_full_results_with_the_scenario_events(
    client: httpx.AsyncClient, run_id: str
) -> None:
    # The same bytes as drawing the stored document (every sample) with the events.
    document = (
        await client.get(f"/api/v1/simulations/{run_id}/results", params={"max_points": 100_000})
    ).json()
    results = SimulationResults.model_validate(document)
    events = [EventInjection.model_validate(e) for e in EVENTS]
    expected = render_plot("ram", results, events=events, fmt="png")
    answer = await client.get(plot_path(run_id, "ram"), params={"format": "png"})
    assert answer.content == expected
    assert answer.content != render_plot("ram", results, fmt="png")


@pytest.mark.parametrize("name", ["ready_queue", "connections", "dashboard"])
async def test_svg_is_xml_with_every_event_window_shaded(
    client: httpx.AsyncClient, run_id: str, name: str
) -> None:
    answer = await client.get(plot_path(run_id, name), params={"format": "svg"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(answer.content)
    assert root.tag == f"{SVG_NS}svg"
    ids = {element.get("id") for element in root.iter()}
    assert {"event-slow-entry", "event-slow-link"} <= ids


async def test_unknown_chart_is_a_404_naming_the_valid_ones(
    client: httpx.AsyncClient, run_id: str
) -> None:
    answer = await client.get(plot_path(run_id, "latency_cdf"))
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert "latency_cdf" in detail
    for name in PLOT_NAMES:
        assert name in detail


@pytest.mark.parametrize("run", ["0" * 32, "5b0c7e1a-0000-4000-8000-000000000000", "not-an-id"])
async def test_unknown_run_is_a_404(client: httpx.AsyncClient, run: str) -> None:
    answer = await client.get(plot_path(run, "latency"))
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"no simulation run with id {run}"


async def test_unknown_format_is_a_422_located_at_the_parameter(
    client: httpx.AsyncClient, run_id: str
) -> None:
    answer = await client.get(plot_path(run_id, "latency"), params={"format": "jpeg"})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", "format"]


async def test_a_run_that_did_not_succeed_has_no_charts(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/v1/simulations", json=small_scenario(horizon_s=5_000, users=100)
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    early = await client.get(plot_path(run_id, "dashboard"))
    assert early.status_code == 409
    assert early.json()["status"] in {"queued", "running"}
    assert (await client.post(f"/api/v1/simulations/{run_id}/cancel")).status_code in {200, 202}
    await wait_for(client, run_id, {"cancelled"})
    answer = await client.get(plot_path(run_id, "latency"), params={"format": "svg"})
    assert answer.status_code == 409
    body = answer.json()
    assert body["status"] == "cancelled"
    assert "succeeded" in body["detail"]


async def test_the_plot_route_is_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    operation = paths["/api/v1/simulations/{run_id}/plots/{name}"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"image/png", "image/svg+xml"}
    assert {"404", "409"} <= set(operation["responses"])


async def test_a_chart_is_drawn_once_for_many_requests(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncflow_backend.api.routers import plots

    submitted = await client.post(
        "/api/v1/simulations", json=small_scenario(horizon_s=24, events=EVENTS)
    )
    run_id = (await wait_for(client, submitted.json()["id"], {"succeeded"}))["id"]

    drawn: list[str] = []
    real = plots._render

    def counting(name: str, *args: Any) -> bytes:
        drawn.append(name)
        return real(name, *args)

    monkeypatch.setattr(plots, "_render", counting)
    path = plot_path(run_id, "throughput") + "?format=svg"
    answers = [await client.get(path) for _ in range(3)]
    answers += await asyncio.gather(*(client.get(plot_path(run_id, "ram")) for _ in range(4)))

    assert [a.status_code for a in answers] == [200] * 7
    assert len({a.content for a in answers[:3]}) == len({a.content for a in answers[3:]}) == 1
    assert sorted(drawn) == ["ram", "throughput"]
