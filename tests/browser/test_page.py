"""The web page in a real browser against a real server: edit, validate, run, read the charts.

The server sends its pages with a strict Content-Security-Policy (no inline
script or style, no eval), so any such thing in the page would show up as a
violation and fail the test.
"""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, ConsoleMessage, Page, Response

from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.api.headers import CONTENT_SECURITY_POLICY
from support.documents import edge_slowdown, spike

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 120_000
EXAMPLES = Path(__file__).parents[2] / "example"
SPIKE = {"start": 10.0, "end": 15.0}
SLOWDOWN = {"start": 21.0, "end": 28.0}


def scenario() -> dict[str, Any]:
    """30 simulated seconds sampled every 10 ms (3,000 samples: more than the page's
    2,000 buckets, so zooming in fetches raw samples), with a latency spike and, later, a
    slowdown of the same edge."""
    document: dict[str, Any] = yaml.safe_load(yaml.safe_dump(SMALL_SCENARIO))
    document["sim_settings"] = {"total_simulation_time": 30, "sample_period_s": 0.01}
    document["events"] = [
        spike("slow-link", "browser-api-1", spike_s=0.05, **SPIKE),
        edge_slowdown("slower-link", "browser-api-1", factor=3, **SLOWDOWN),
    ]
    return document


def invalid_scenario() -> dict[str, Any]:
    """Two edges that name nodes which do not exist."""
    document = scenario()
    edges = document["topology_graph"]["edges"]
    edges[1]["target"] = "api-9"
    edges[2]["source"] = "nobody"
    return document


class Watched:
    """A page whose HTML must come with the strict CSP; every console and page error is kept."""

    def __init__(self, page: Page, expected_statuses: tuple[int, ...] = (422,)) -> None:
        self.page = page
        self.errors: list[str] = []
        self.expected = [f"status of {status}" for status in expected_statuses]
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("response", self._check_policy)

    def _console(self, message: ConsoleMessage) -> None:
        # An error answer the test provokes is logged by Chromium as a failed resource.
        if message.type == "error" and not any(e in message.text for e in self.expected):
            self.errors.append(message.text)

    def _check_policy(self, response: Response) -> None:
        if response.headers.get("content-type", "").startswith("text/html"):
            policy = response.headers.get("content-security-policy")
            if policy != CONTENT_SECURITY_POLICY:
                self.errors.append(f"{response.url} has the policy {policy!r}")


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = Watched(context.new_page())
    page.page.set_default_timeout(30_000)
    yield page
    context.close()
    assert page.errors == []


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    """Saved with the test's files, and under /tmp for a person to look at."""
    path = tmp_path / f"page-{name}.png"
    page.screenshot(path=path, full_page=True)
    shutil.copyfile(path, f"/tmp/page-{name}.png")


def shown_problems(page: Page, selector: str = "#problems li") -> list[tuple[str, str]]:
    items = page.locator(selector)
    return [
        (items.nth(i).locator(".path").inner_text(), items.nth(i).locator(".message").inner_text())
        for i in range(items.count())
    ]


def test_invalid_scenario_lists_the_api_problems(
    server: str, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    page.goto(f"{server}/")
    assert page.input_value("#scenario").strip() != ""
    text = yaml.safe_dump(invalid_scenario(), sort_keys=False)
    expected = httpx.post(
        f"{server}/api/v1/scenarios/validate",
        content=text,
        headers={"Content-Type": "application/yaml"},
    ).json()["detail"]
    assert len(expected) == 2
    page.fill("#scenario", text)
    page.click("#validate")
    page.wait_for_selector("#problems li")
    assert shown_problems(page) == [(p["path"], p["msg"]) for p in expected]
    assert page.inner_text("#check-status") == "the scenario has 2 problems"
    assert "invalid" in (page.get_attribute("#scenario", "class") or "")
    screenshot(page, tmp_path, "invalid")

    # Submitting the same text shows the same problems and stays on the editor.
    page.evaluate("document.getElementById('problems').replaceChildren()")
    page.click("#submit")
    page.wait_for_selector("#problems li")
    assert shown_problems(page) == [(p["path"], p["msg"]) for p in expected]
    assert page.url == f"{server}/"


def test_validate_lists_the_warnings_of_a_valid_scenario(
    server: str, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    page.goto(f"{server}/")
    document = scenario()
    document["topology_graph"]["edges"][1]["latency"] = {"mean": 0.002}
    text = yaml.safe_dump(document, sort_keys=False)
    expected = httpx.post(
        f"{server}/api/v1/scenarios/validate",
        content=text,
        headers={"Content-Type": "application/yaml"},
    ).json()["warnings"]
    assert len(expected) == 2

    page.fill("#scenario", text)
    page.click("#validate")
    page.wait_for_selector("#warnings li.warning")

    assert shown_problems(page, "#warnings li") == [(w["path"], w["msg"]) for w in expected]
    assert page.inner_text("#check-status").startswith("Valid")
    assert "2 warnings" in page.inner_text("#check-status")
    assert page.locator("#problems").is_hidden()
    screenshot(page, tmp_path, "warnings")

    # Editing clears the check, warnings included.
    page.fill("#scenario", text + "\n")
    assert page.locator("#warnings").is_hidden()


def test_examples_fill_the_editor(server: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{server}/")
    options = page.locator("#example option")
    names = [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert names
    last = names[-1]
    assert last is not None
    page.select_option("#example", last)
    examples = page.evaluate("JSON.parse(document.getElementById('page-config').textContent)")
    assert page.input_value("#scenario") == examples["examples"][last]["text"]


def canvas_ink(page: Page, chart: str) -> int:
    """How many pixels of the chart's canvas are neither blank nor white."""
    ink: int = page.evaluate(
        """(chart) => {
            const canvas = document.querySelector(`figure[data-chart="${chart}"] canvas`);
            const ctx = canvas.getContext("2d");
            const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let ink = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                const dark = Math.min(pixels[i], pixels[i + 1], pixels[i + 2]) < 240;
                if (pixels[i + 3] > 0 && dark) ink++;
            }
            return ink;
        }""",
        chart,
    )
    return ink


def pixel_at(page: Page, chart: str, t: float, height_share: float) -> list[int]:
    """RGBA of the canvas at simulated time `t`, `height_share` down the plotting area."""
    rgba: list[int] = page.evaluate(
        """([chart, t, share]) => {
            const u = window.AsyncFlowCharts.plots[chart];
            const x = Math.round(u.valToPos(t, "x", true));
            const y = Math.round(u.bbox.top + u.bbox.height * share);
            return Array.from(u.ctx.getImageData(x, y, 1, 1).data);
        }""",
        [chart, t, height_share],
    )
    return rgba


def drag_across(page: Page, chart: str, start_share: float, end_share: float) -> None:
    area = page.locator(f'figure[data-chart="{chart}"] .u-over')
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start_share, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end_share, y, steps=10)
    page.mouse.up()


def test_submit_run_and_read_its_charts(server: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    page.goto(f"{server}/")
    page.fill("#scenario", yaml.safe_dump(scenario(), sort_keys=False))
    page.click("#validate")
    page.wait_for_selector("#check-summary:not([hidden])")
    assert page.inner_text("#check-status").startswith("Valid")
    assert "servers" in page.inner_text("#check-summary")

    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    run_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("body:not([data-state='waiting'])", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.state") == "ready"
    assert page.inner_text("#run-status") == "succeeded"
    assert page.locator("#cancel").is_hidden()

    # The summary shows the stored results.
    results = httpx.get(f"{server}/api/v1/simulations/{run_id}/results").json()
    stats = page.inner_text("#stats")
    assert f"{results['requests']['generated']:,}" in stats
    assert str(results["meta"]["seed"]) in stats
    assert page.locator("#servers-table tbody tr").count() == len(results["servers"])
    assert page.locator("#edges-table tbody tr").count() == len(results["edges"])
    endpoints = sum(len(s["endpoints"]) for s in results["servers"].values())
    assert page.locator("#endpoints-table tbody tr").count() == endpoints
    assert page.locator("#pools").is_hidden()
    assert page.locator("#replica-groups").is_hidden()
    assert "slow-link" in page.inner_text("#events-list")

    # Every chart drew its data; without pools there is no pool chart.
    charts = [
        "latency",
        "latency_over_time",
        "throughput",
        "ready_queue",
        "io_queue",
        "ram",
        "connections",
    ]
    for chart in charts:
        figure = page.locator(f'figure[data-chart="{chart}"]')
        assert int(figure.get_attribute("data-points") or 0) > 0, chart
        assert canvas_ink(page, chart) > 2_000, chart
    assert page.get_attribute('figure[data-chart="ram"]', "data-series") == str(
        len(results["servers"])
    )
    assert page.locator('figure[data-chart="pool_waiting"]').count() == 0
    assert page.get_attribute('figure[data-chart="latency_over_time"]', "data-series") == "3"

    # The spike shows in the p99 over time too: shaded inside its window.
    inside_p99 = pixel_at(page, "latency_over_time", (SPIKE["start"] + SPIKE["end"]) / 2, 0.03)
    assert inside_p99[0] > inside_p99[2] + 20, inside_p99

    # The spike window is shaded orange near the top of the time charts, and not outside it.
    inside = pixel_at(page, "throughput", (SPIKE["start"] + SPIKE["end"]) / 2, 0.03)
    outside = pixel_at(page, "throughput", SPIKE["end"] + 5, 0.03)
    assert inside[0] > inside[2] + 20, inside
    assert abs(outside[0] - outside[2]) < 10, outside
    # The slowdown is listed with its factor and shaded teal.
    assert "browser-api-1 x3" in page.inner_text("#events-list")
    slowed = pixel_at(page, "throughput", SLOWDOWN["end"] - 2, 0.03)
    assert slowed[1] > slowed[0] + 10, slowed

    # Hovering reads the value under the cursor into the legend.
    area = page.locator('figure[data-chart="throughput"] .u-over')
    area.scroll_into_view_if_needed()
    box = area.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    legend = page.locator('figure[data-chart="throughput"] .u-legend .u-series').nth(1)
    assert re.search(r"\d+ /s", legend.inner_text())

    screenshot(page, tmp_path, "run")

    # Zooming into a few seconds fetches the raw samples of that window; double-click undoes it.
    ram = page.locator('figure[data-chart="ram"]')
    assert ram.get_attribute("data-resolution") == "buckets"
    buckets = int(ram.get_attribute("data-points") or 0)
    with page.expect_response(re.compile(r"/timeseries\?metric=ram_in_use")) as answer:
        drag_across(page, "ram", 0.40, 0.50)
    assert answer.value.ok
    page.wait_for_selector('figure[data-chart="ram"][data-resolution="raw"]')
    window = page.evaluate(
        "[AsyncFlowCharts.plots.ram.scales.x.min, AsyncFlowCharts.plots.ram.scales.x.max]"
    )
    raw = int(ram.get_attribute("data-points") or 0)
    assert window[1] - window[0] < 4.0
    assert raw == pytest.approx((window[1] - window[0]) / 0.01, abs=2)
    assert canvas_ink(page, "ram") > 500
    ram.screenshot(path=tmp_path / "page-zoom.png")
    shutil.copyfile(tmp_path / "page-zoom.png", "/tmp/page-zoom.png")
    area = page.locator('figure[data-chart="ram"] .u-over')
    area.dblclick()
    page.wait_for_selector('figure[data-chart="ram"][data-resolution="buckets"]')
    assert int(ram.get_attribute("data-points") or 0) == buckets

    # The image links answer with images.
    for fmt, media_type in (("png", "image/png"), ("svg", "image/svg+xml")):
        href = page.get_attribute(
            f'figure[data-chart="latency"] a:text-is("{fmt.upper()}")', "href"
        )
        assert href is not None
        image = httpx.get(f"{server}{href}", timeout=60)
        assert image.status_code == 200
        assert image.headers["content-type"] == media_type

    # The runs list shows the run as succeeded, linked to its page.
    page.goto(f"{server}/")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    row.wait_for()
    assert row.get_attribute("data-status") == "succeeded"
    assert row.locator(".badge").inner_text() == "succeeded"
    assert row.locator("a").get_attribute("href") == f"/runs/{run_id}"
    screenshot(page, tmp_path, "index")


def test_with_api_keys_the_page_works_once_a_key_is_pasted(
    keyed_server: str, api_key: str, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    watched = Watched(context.new_page(), expected_statuses=(401,))
    page = watched.page
    page.set_default_timeout(30_000)
    page.goto(f"{keyed_server}/")

    # Without a key the runs list says what is missing.
    page.wait_for_selector("#runs-error:not([hidden])")
    assert "API key" in page.inner_text("#runs-error")

    page.fill("#api-key", api_key)
    with page.expect_navigation():
        page.click("#api-key-form button")
    assert page.evaluate("sessionStorage.getItem('asyncflow.apiKey')") == api_key
    page.fill("#scenario", yaml.safe_dump(scenario(), sort_keys=False))
    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    page.wait_for_selector("body:not([data-state='waiting'])", timeout=RUN_TIMEOUT_MS)

    assert page.evaluate("document.body.dataset.state") == "ready"
    assert page.inner_text("#run-status") == "succeeded"
    # The run's scenario, read with the key, gives the events to list and shade.
    assert "slow-link" in page.inner_text("#events-list")
    inside = pixel_at(page, "throughput", (SPIKE["start"] + SPIKE["end"]) / 2, 0.03)
    assert inside[0] > inside[2] + 20, inside
    run_id = page.url.rsplit("/", 1)[1]
    assert httpx.get(f"{keyed_server}/api/v1/simulations/{run_id}").status_code == 401
    screenshot(page, tmp_path, "keyed-run")
    page.goto(f"{keyed_server}/")
    page.wait_for_selector(f"#runs-body a[href='/runs/{run_id}']")
    context.close()
    assert watched.errors == []


def test_a_run_shows_its_calls_and_where_the_mean_response_time_goes(
    server: str, watched: Watched, tmp_path: Path
) -> None:
    document = yaml.safe_load((EXAMPLES / "tiers.yml").read_text(encoding="utf-8"))
    document["sim_settings"]["total_simulation_time"] = 10
    answer = httpx.post(f"{server}/api/v1/simulations", json=document, timeout=30)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    page = watched.page
    page.goto(f"{server}/runs/{run_id}")
    page.wait_for_selector("body:not([data-state='waiting'])", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.state") == "ready"
    results = httpx.get(f"{server}/api/v1/simulations/{run_id}/results").json()

    assert page.locator("#calls-table tbody tr").count() == len(results["calls"])
    parts = results["breakdown"]
    assert page.locator("#breakdown-table tbody tr").count() == len(parts)
    places = list(dict.fromkeys(part["place"] for part in parts))
    rows = page.locator(".breakdown-row")
    assert [rows.nth(i).get_attribute("data-place") for i in range(rows.count())] == places
    # Each bar's segments are as long as its parts, against the widest place.
    seconds = {p: sum(x["mean_s"] for x in parts if x["place"] == p) for p in places}
    widest = max(seconds, key=lambda place: seconds[place])
    track = page.locator(f'.breakdown-row[data-place="{widest}"] .track')
    full = track.bounding_box()
    assert full is not None
    for place in ("db-1", widest):
        segments = page.locator(f'.breakdown-row[data-place="{place}"] .segment')
        width = sum(
            (segments.nth(i).bounding_box() or {"width": 0})["width"]
            for i in range(segments.count())
        )
        assert width == pytest.approx(full["width"] * seconds[place] / seconds[widest], abs=2)
    categories = page.locator('.breakdown-row[data-place="db-1"] .segment')
    shown = {categories.nth(i).get_attribute("data-category") for i in range(categories.count())}
    assert shown == {p["category"] for p in parts if p["place"] == "db-1"}
    assert "cpu" in page.inner_text("#breakdown-legend")
    screenshot(page, tmp_path, "breakdown")


def test_a_run_with_retries_shows_its_attempts_and_outcomes_per_second(
    server: str, watched: Watched
) -> None:
    page = watched.page
    page.goto(f"{server}/")
    storm = (Path(__file__).parents[2] / "example" / "retry_storm_budget.yml").read_text()
    page.fill("#scenario", storm)
    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    page.wait_for_selector("body:not([data-state='waiting'])", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.state") == "ready"

    run_id = page.url.rsplit("/", 1)[1]
    results = httpx.get(f"{server}/api/v1/simulations/{run_id}/results").json()
    stats = page.inner_text("#stats")
    for words in ("attempts", "retries", "retries refused", "timed out", "late answers"):
        assert words in stats
    assert f"{results['requests']['attempts']:,}" in stats
    # More than 1 % did not complete: the summary says so first, in words, and shows the
    # share, the goodput and the time to outcome beside the latency of completed requests.
    share = results["requests"]["not_completed_share"]
    assert share > 0.01
    warning = page.locator("#not-completed-warning")
    assert warning.is_visible()
    said = warning.inner_text()
    assert said.startswith("Warning: ")
    assert "of requests did not complete" in said
    assert f"{results['requests']['timed_out']:,} timed out" in said
    assert "counts completed requests only" in said
    latency = page.text_content("#latency-stats") or ""  # as written, not as styled
    for words in ("Latency (completed)", "not completed", "goodput (completed)"):
        assert words in latency
    outcome = page.text_content("#outcome-stats") or ""
    assert outcome.startswith("Time to outcome (all ended)")
    placed = page.evaluate(
        "[...document.querySelectorAll('#not-completed-warning, #stats')].map(e => e.id)"
    )
    assert placed == ["not-completed-warning", "stats"]
    # Answers, the goodput (some answers came late), timed out and the attempts sent.
    assert page.get_attribute('figure[data-chart="throughput"]', "data-series") == "4"
    assert canvas_ink(page, "throughput") > 2_000


def test_an_autoscaled_run_shows_its_replicas_over_time(server: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{server}/")
    page.fill("#scenario", (EXAMPLES / "autoscaling.yml").read_text())
    page.click("#submit")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f]{32}$"))
    page.wait_for_selector("body:not([data-state='waiting'])", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.state") == "ready"

    run_id = page.url.rsplit("/", 1)[1]
    results = httpx.get(f"{server}/api/v1/simulations/{run_id}/results").json()
    scaling = results["replica_groups"]["api"]["autoscaling"]
    # In service and ready, one step line each, at every change of either.
    figure = 'figure[data-chart="replicas"]'
    assert page.get_attribute(figure, "data-series") == "2"
    changes = {t for t, _ in scaling["replicas_over_time"] + scaling["ready_over_time"]}
    assert page.get_attribute(figure, "data-points") == str(len(changes))
    assert canvas_ink(page, "replicas") > 1_000
    row = page.inner_text("#replica-groups-table tbody tr")
    assert f"{scaling['replicas_min']} to {scaling['replicas_max']}" in row
    assert "autoscaled" in row
