"""The web pages: served, pre-filled, escaped, script-free markup, and their static files."""

import hashlib
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_support import api_client, sqlite_settings
from markupsafe import escape

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.plots import PLOT_NAMES
from asyncflow_backend.web.pages import UPLOT_DIR, WEB_DIR
from support.documents import spike
from support.scenarios import small_scenario

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
JS_TYPES = {"text/javascript", "application/javascript"}


class Page(HTMLParser):
    """What the tests look at in a page: elements with their attributes, and some texts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        if "id" in attributes:
            self.texts.setdefault(attributes["id"], "")
            self._open.append(attributes["id"])
        else:
            self._open.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in {"meta", "link", "input", "br", "wbr"}:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] += data

    def by_id(self, element_id: str) -> tuple[str, dict[str, str]]:
        (found,) = [(t, a) for t, a in self.elements if a.get("id") == element_id]
        return found

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.texts["page-config"])
        return config

    def static_urls(self) -> list[str]:
        urls = [a.get("src") or a.get("href") or "" for _, a in self.elements]
        return [u for u in urls if u.startswith("/static/")]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return sqlite_settings(tmp_path_factory.mktemp("web"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run_id(client: httpx.AsyncClient) -> str:
    """A submitted run of a scenario with one injected event (its status does not matter)."""
    slow_link = spike("slow-link", "browser-api-1", start=2.0, end=4.0, spike_s=0.05)
    scenario = small_scenario(horizon_s=10, events=[slow_link])
    answer = await client.post("/api/v1/simulations", json=scenario)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def get_page(client: httpx.AsyncClient, path: str, status: int = 200) -> Page:
    answer = await client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    return Page(answer.text)


def assert_no_inline_code(page: Page) -> None:
    """Scripts come from files, data from JSON blocks: the page suits a strict CSP."""
    for tag, attrs in page.elements:
        if tag == "script":
            assert "src" in attrs or attrs.get("type") == "application/json", attrs
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        for name in ("href", "src", "action"):
            assert not attrs.get(name, "").lower().startswith("javascript:"), (tag, attrs)


async def test_index_has_the_editor_pre_filled_with_the_first_example(
    client: httpx.AsyncClient,
) -> None:
    page = await get_page(client, "/")
    assert page.by_id("scenario-form")[0] == "form"
    assert page.by_id("scenario")[0] == "textarea"
    assert page.by_id("validate")[0] == "button"
    assert page.by_id("submit")[1]["type"] == "submit"
    assert page.by_id("upload")[1]["type"] == "file"
    quickstart = (ROOT / "example" / "quickstart.yml").read_text(encoding="utf-8")
    assert page.texts["scenario"] == quickstart
    options = [a["value"] for t, a in page.elements if t == "option" and "value" in a]
    examples = page.config()["examples"]
    assert options[0] == "quickstart.yml"
    assert set(examples) <= set(options)
    assert examples["quickstart.yml"]["text"] == quickstart
    assert page.config()["pollMs"] == 1000
    assert page.by_id("runs-body")[0] == "tbody"


@pytest.mark.parametrize("path", ["/", "/runs/{run_id}", "/runs/unknown"])
async def test_pages_hold_no_inline_code(client: httpx.AsyncClient, run_id: str, path: str) -> None:
    answer = await client.get(path.format(run_id=run_id))
    assert_no_inline_code(Page(answer.text))


@pytest.mark.parametrize("path", ["/", "/runs/{run_id}"])
async def test_every_static_file_a_page_uses_is_served(
    client: httpx.AsyncClient, run_id: str, path: str
) -> None:
    page = await get_page(client, path.format(run_id=run_id))
    urls = page.static_urls()
    assert any(u.endswith(".js") or ".js?" in u for u in urls)
    for url in urls:
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 0


@pytest.mark.parametrize(
    ("path", "types"),
    [
        ("app.css", {"text/css"}),
        ("common.js", JS_TYPES),
        ("index.js", JS_TYPES),
        ("run.js", JS_TYPES),
        ("charts.js", JS_TYPES),
        ("favicon.svg", {"image/svg+xml"}),
        (f"{UPLOT_DIR}/uPlot.iife.min.js", JS_TYPES),
        (f"{UPLOT_DIR}/uPlot.min.css", {"text/css"}),
    ],
)
async def test_static_files_have_their_content_types(
    client: httpx.AsyncClient, path: str, types: set[str]
) -> None:
    answer = await client.get(f"/static/{path}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] in types
    assert answer.content == (WEB_DIR / "static" / path).read_bytes()


@pytest.mark.parametrize(
    "path", ["/static/missing.js", "/static/../pages.py", "/static/%2e%2e/pages.py"]
)
async def test_static_serves_nothing_else(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_the_vendored_charting_library_is_the_documented_release() -> None:
    docs = (ROOT / "docs" / "web.md").read_text(encoding="utf-8")
    version = UPLOT_DIR.removeprefix("vendor/uplot-")
    assert f"uPlot {version}" in docs
    vendor = WEB_DIR / "static" / UPLOT_DIR
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        assert re.search(rf"{digest}\s+{re.escape(name)}", docs), name
    assert (vendor / "LICENSE").read_text(encoding="utf-8").startswith("The MIT License")
    assert f"(v{version})" in (vendor / "uPlot.iife.min.js").read_text(encoding="utf-8")[:80]


async def test_example_text_is_escaped_everywhere(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile = '# <b>bold</b> & "quotes"\nx: "</textarea></script><img src=x onerror=alert(1)>"\n'
    (tmp_path / "example").mkdir()
    (tmp_path / "example" / "a<b>.yml").write_text(hostile, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    answer = await client.get("/")
    assert "<img" not in answer.text
    assert "</script><img" not in answer.text
    page = Page(answer.text)
    assert not [t for t, _ in page.elements if t in {"img", "b"}]
    assert page.texts["scenario"] == hostile
    assert page.texts["example-description"] == '<b>bold</b> & "quotes"'
    assert page.config()["examples"]["a<b>.yml"]["text"] == hostile
    assert_no_inline_code(page)


async def test_without_examples_the_built_in_scenario_is_pre_filled(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("asyncflow_backend.web.examples._SOURCE_ROOT", tmp_path)
    page = await get_page(client, "/")
    assert list(page.config()["examples"]) == ["small.yml"]
    assert "rqs_input:" in page.texts["scenario"]


async def test_run_page_carries_the_run_and_its_scripts_read_the_events(
    client: httpx.AsyncClient, run_id: str
) -> None:
    page = await get_page(client, f"/runs/{run_id}")
    config = page.config()
    assert config["runId"] == run_id
    assert config["plots"] == list(PLOT_NAMES)
    assert page.by_id("charts")[0] == "div"
    assert page.by_id("run-status")[0] == "span"
    # The events to shade and the raw sample period come from the run's scenario,
    # which the page's script reads through the API (with the key, when keys are on).
    scenario = (await client.get(f"/api/v1/simulations/{run_id}/scenario")).json()
    assert [event["event_id"] for event in scenario["events"]] == ["slow-link"]
    assert scenario["sim_settings"]["sample_period_s"] == 0.1


async def test_run_page_accepts_the_dashed_id(client: httpx.AsyncClient, run_id: str) -> None:
    dashed = f"{run_id[:8]}-{run_id[8:12]}-{run_id[12:16]}-{run_id[16:20]}-{run_id[20:]}"
    page = await get_page(client, f"/runs/{dashed}")
    assert page.config()["runId"] == run_id


@pytest.mark.parametrize("run", ["0" * 32, "<i>nope"])
async def test_unknown_run_page_is_a_404_page(client: httpx.AsyncClient, run: str) -> None:
    answer = await client.get(f"/runs/{run}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<i>" not in answer.text
    assert str(escape(run)) in answer.text


async def test_pages_stay_out_of_the_api_description(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith(("/runs", "/static"))]
