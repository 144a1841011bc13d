"""Reading a run in a real browser: its name, the latency views, small multiples, colours,
capacity lines, event labels that do not overlap, significant digits, edit and run again."""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect
from test_page import RUN_TIMEOUT_MS, Watched, canvas_ink

from asyncflow_backend.plots.style import component_colours
from asyncflow_backend.schemas.results import SimulationResults
from support.documents import balancer, edge, exponential, route, server, spike
from support.scenarios import small_scenario

pytestmark = pytest.mark.browser

SERVERS = {"api-a": 512, "api-b": 768, "api-c": 768}
EVENT_IDS = [f"spike-{k}" for k in range(6)]


def scenario() -> dict[str, Any]:
    """Three servers behind a load balancer (eight edges), six spikes 0.3 s apart."""
    spikes = [
        spike(event_id, "browser-lb", start=10.0 + k * 0.3, end=20.0, spike_s=0.02)
        for k, event_id in enumerate(EVENT_IDS)
    ]
    document = small_scenario(horizon_s=30, sample_period_s=0.05, events=spikes)
    nodes = document["topology_graph"]["nodes"]
    template = nodes["servers"][0]
    nodes["servers"] = [
        server(s, endpoints=template["endpoints"], **template["server_resources"] | {"ram_mb": ram})
        for s, ram in SERVERS.items()
    ]
    nodes["load_balancer"] = balancer(*SERVERS)
    link = exponential(0.002)
    edges = route("visitors", "browser", "lb", latency=link, dropout=None)
    edges += [edge("lb", s, latency=link, dropout=None) for s in SERVERS]
    edges += [edge(s, "browser", latency=link, dropout=None) for s in SERVERS]
    document["topology_graph"]["edges"] = edges
    document["description"] = "Three replicas\nbehind one balancer."
    return document


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = Watched(context.new_page())
    page.page.set_default_timeout(30_000)
    yield page
    context.close()
    assert page.errors == []


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"page-{name}.png"
    page.screenshot(path=path, full_page=True)
    shutil.copyfile(path, f"/tmp/page-{name}.png")


def upload(page: Page, tmp_path: Path, file_name: str, document: dict[str, Any]) -> None:
    path = tmp_path / file_name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    page.set_input_files("#upload", str(path))
    # `expect` polls without eval, which the page's CSP forbids.
    expect(page.locator("#scenario")).to_have_value(path.read_text())


def submit_and_wait(page: Page) -> str:
    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    page.wait_for_selector("body:not([data-state='waiting'])", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.state") == "ready"
    return page.url.rsplit("/", 1)[1]


def test_numbers_keep_significant_digits(server: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{server}/")
    shown = page.evaluate(
        "[0.001, 0.0000833, 0, 2, 12.345, 12345.6, 0.1 + 0.2].map((v) => AsyncFlow.number(v))"
    )
    assert shown == ["0.001", "0.0000833", "0", "2", "12.3", "12,346", "0.3"]
    assert page.evaluate("AsyncFlow.ms(0.0000012)") == "0.0012 ms"
    assert page.evaluate("AsyncFlow.percent(0.000123)") == "0.0123 %"


def test_a_named_run_read_through_every_view(server: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    page.goto(f"{server}/")
    upload(page, tmp_path, "three_replicas.yml", scenario())
    run_id = submit_and_wait(page)

    # The name comes from the file; the description from the scenario.
    assert page.inner_text("#run-name") == "three_replicas"
    assert page.inner_text("#run-description") == "Three replicas\nbehind one balancer."
    assert "three_replicas" in page.title()
    status = httpx.get(f"{server}/api/v1/simulations/{run_id}").json()
    assert status["name"] == "three_replicas"
    href = page.get_attribute("#scenario-link", "href")
    assert href == f"/api/v1/simulations/{run_id}/scenario"
    assert httpx.get(f"{server}{href}").json()["name"] == "three_replicas"

    results = SimulationResults.model_validate(
        httpx.get(f"{server}/api/v1/simulations/{run_id}/results").json()
    )

    # The latency histogram opens on a log axis; linear and CDF are a click away.
    latency = page.locator('figure[data-chart="latency"]')
    assert latency.get_attribute("data-view") == "log"
    assert page.evaluate("AsyncFlowCharts.plots.latency.scales.y.distr") == 3
    latency.locator('button[data-view="linear"]').click()
    assert latency.get_attribute("data-view") == "linear"
    assert page.evaluate("AsyncFlowCharts.plots.latency.scales.y.distr") == 1
    assert canvas_ink(page, "latency") > 2_000
    latency.locator('button[data-view="cdf"]').click()
    assert latency.get_attribute("data-view") == "cdf"
    shares = page.evaluate("AsyncFlowCharts.plots.latency.data[1]")
    assert shares[0] == 0
    assert shares[-1] == pytest.approx(1.0)
    assert shares == sorted(shares)
    assert canvas_ink(page, "latency") > 2_000
    latency.screenshot(path=tmp_path / "page-latency-cdf.png")
    shutil.copyfile(tmp_path / "page-latency-cdf.png", "/tmp/page-latency-cdf.png")
    latency.locator('button[data-view="log"]').click()
    assert page.evaluate("AsyncFlowCharts.plots.latency.scales.y.distr") == 3

    # Eight edges open as small multiples sharing one y range; "Together" overlays them.
    connections = page.locator('figure[data-chart="connections"]')
    assert connections.get_attribute("data-view") == "split"
    assert connections.locator(".multiple").count() == len(results.edges) == 8
    ranges = page.evaluate(
        """Object.entries(AsyncFlowCharts.plots).filter(([k]) => k.startsWith("connections:"))
            .map(([k, u]) => [u.scales.y.min, u.scales.y.max])"""
    )
    assert len(ranges) == 8
    assert len({tuple(r) for r in ranges}) == 1
    connections.locator('button[data-view="overlay"]').click()
    assert connections.get_attribute("data-series") == "8"
    assert (
        page.evaluate(
            "Object.keys(AsyncFlowCharts.plots).some((k) => k.startsWith('connections:'))"
        )
        is False
    )
    connections.locator('button[data-view="split"]').click()
    assert connections.locator(".multiple").count() == 8

    # Each component has the colour of the images, in every chart.
    expected = component_colours(results)
    for chart in ("ready_queue", "io_queue", "ram"):
        strokes = page.evaluate(
            """(chart) => Object.fromEntries(AsyncFlowCharts.plots[chart].series.slice(1)
                .map((s) => [s.label, s._stroke || s.stroke]))""",
            chart,
        )
        assert strokes == {s: expected[s] for s in SERVERS}, chart

    # RAM shows each server's capacity: api-a alone, api-b and api-c on one shared line.
    ceilings = page.evaluate(
        """() => {
            const u = AsyncFlowCharts.plots.ram;
            return [512, 768].map((mb) => {
                const y = Math.round(u.valToPos(mb, "y", true));
                const x = Math.round(u.bbox.left + u.bbox.width * 0.5);
                let dark = 0;
                for (let dy = -2; dy <= 2; dy++) {
                    for (let dx = 0; dx < 40; dx++) {
                        const p = u.ctx.getImageData(x + dx, y + dy, 1, 1).data;
                        if (p[3] > 0 && Math.min(p[0], p[1], p[2]) < 200) dark++;
                    }
                }
                return [u.scales.y.max >= mb, dark];
            });
        }"""
    )
    assert all(reaches and dark > 10 for reaches, dark in ceilings), ceilings

    # Six events 0.3 s apart: their labels stack and none covers another.
    labels = page.evaluate("AsyncFlowCharts.plots.throughput.eventLabels")
    assert sorted(label["id"] for label in labels) == EVENT_IDS
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (a, b)
    screenshot(page, tmp_path, "reading")

    # The runs list names the run.
    page.goto(f"{server}/")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    row.wait_for()
    assert row.locator(".run-name").inner_text() == "three_replicas"


def test_edit_and_run_again_with_the_same_or_a_fresh_seed(
    server: str, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    page.goto(f"{server}/")
    document = scenario()
    document["name"] = "replicas, named in the file"
    upload(page, tmp_path, "ignored_file_name.yml", document)
    first = submit_and_wait(page)
    seed = httpx.get(f"{server}/api/v1/simulations/{first}").json()["seed"]

    page.click("#edit-same-seed")
    page.wait_for_url(re.compile(r"/\?from="))
    # The page reads the scenario, then the run for its seed; the status line says when both
    # are in (or why not). `expect` polls without eval, which the page's CSP forbids.
    expect(page.locator("#check-status")).to_have_text(re.compile("Scenario loaded|could not"))
    assert page.inner_text("#check-status").startswith("Scenario loaded")
    assert page.input_value("#seed") == str(seed)
    text = page.input_value("#scenario")
    assert text.lstrip().startswith('{\n  "name": "replicas, named in the file"')
    screenshot(page, tmp_path, "edit-again")
    second = submit_and_wait(page)
    assert second != first
    assert page.inner_text("#run-name") == "replicas, named in the file"
    again = [httpx.get(f"{server}/api/v1/simulations/{r}/results").json() for r in (first, second)]
    assert again[0]["requests"] == again[1]["requests"]
    assert again[0]["meta"]["seed"] == again[1]["meta"]["seed"] == seed

    page.click("#edit-fresh-seed")
    page.wait_for_url(re.compile(r"/\?from="))
    expect(page.locator("#check-status")).to_have_text(re.compile("Scenario loaded"))
    assert page.input_value("#seed") == ""
    assert '"seed"' not in page.input_value("#scenario")


def test_an_edited_example_keeps_its_name_and_a_pasted_scenario_has_none(
    server: str, watched: Watched
) -> None:
    page = watched.page
    page.goto(f"{server}/")
    page.select_option("#example", "single_server.yml")
    text = page.input_value("#scenario")
    page.fill("#scenario", text.replace("total_simulation_time: ", "total_simulation_time: 1", 1))
    run_id = submit_and_wait(page)
    assert httpx.get(f"{server}/api/v1/simulations/{run_id}").json()["name"] == "single_server"

    page.goto(f"{server}/")
    page.fill("#scenario", yaml.safe_dump(scenario(), sort_keys=False))
    run_id = submit_and_wait(page)
    assert httpx.get(f"{server}/api/v1/simulations/{run_id}").json()["name"] is None
    assert page.locator("#run-name").is_hidden()
