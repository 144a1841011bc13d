"""The experiment page in headless Chromium: it follows an experiment and draws its chart."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from support.documents import (
    cpu,
    edge,
    exponential,
    poisson_arrivals,
    scenario_document,
    server,
)

pytestmark = pytest.mark.browser

TIMEOUT_MS = 120_000


def scenario() -> dict[str, Any]:
    """20 Poisson users a second into one server's exponential 10 ms of CPU, for 10 s."""
    link = exponential(0.001)
    edges = [
        edge("gen", "client", latency=link, dropout=None, edge_id="a"),
        edge("client", "srv", latency=link, dropout=None, edge_id="b"),
        edge("srv", "client", latency=link, dropout=None, edge_id="c"),
    ]
    return scenario_document(
        poisson_arrivals(20),
        [server("srv", cpu(exponential(0.01)), endpoint_name="/api")],
        edges,
        horizon_s=10,
        settings={"sample_period_s": 0.1},
    )


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    yield opened, errors
    context.close()


def test_the_experiment_page_follows_a_sweep_and_draws_its_bands(
    server: str, page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    document = {
        "scenario": scenario(),
        "seed": 3,
        "replications": 3,
        "sweep": [{"path": "rqs_input.avg_active_users.mean", "values": [20, 40, 60]}],
    }
    answer = httpx.post(f"{server}/api/v1/experiments", json=document, timeout=30)
    assert answer.status_code == 202, answer.text
    experiment_id = answer.json()["id"]
    browser_page, errors = page

    browser_page.goto(f"{server}/experiments/{experiment_id}")
    browser_page.wait_for_selector("body[data-state='succeeded']", timeout=TIMEOUT_MS)
    browser_page.wait_for_selector("#chart figure[data-points='3'] canvas")

    assert browser_page.locator("#points-table tbody tr").count() == 3
    assert "9 / 9" in browser_page.locator("#experiment-facts").inner_text()
    assert browser_page.locator("#experiment-status").inner_text() == "succeeded"
    browser_page.select_option("#metric", "throughput.mean_rps")
    browser_page.wait_for_selector("#chart figure[data-points='3'] canvas")
    href = browser_page.locator("#plot-link").get_attribute("href")
    assert href is not None
    assert "metric=throughput.mean_rps" in href
    image = httpx.get(f"{server}{href}", timeout=30)
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    path = tmp_path / "page-experiment.png"
    browser_page.screenshot(path=path, full_page=True)
    shutil.copyfile(path, "/tmp/page-experiment.png")
    assert errors == []


def test_an_unknown_experiment_is_a_404_page(server: str, page: tuple[Page, list[str]]) -> None:
    browser_page, _ = page
    answer = browser_page.goto(f"{server}/experiments/0123456789abcdef0123456789abcdef")
    assert answer is not None
    assert answer.status == 404
    assert "Experiment not found" in browser_page.locator("h1").inner_text()
