"""The HTML pages: `/` (editor and runs list) and `/runs/{id}` (one run), plus `/static`.

Pages are rendered on the server with autoescaping Jinja2 templates; what
changes while a page is open (validation problems, run status, results,
charts) is fetched from the JSON API by the page's static scripts. No page
holds inline script code or inline styles, so a strict Content-Security-Policy
(`script-src 'self'; style-src 'self'`) suits them: data the scripts need is
passed in `application/json` blocks, which browsers never execute.
"""

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from asyncflow_backend import engine_version
from asyncflow_backend.api.dependencies import AutocommitRepositoryDep, SettingsDep
from asyncflow_backend.db.models import Run
from asyncflow_backend.db.repository import RunRepository
from asyncflow_backend.plots import PLOT_NAMES
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.web.examples import load_examples

WEB_DIR = Path(__file__).resolve().parent
STATIC_PREFIX = "/static"
UPLOT_VERSION = "1.6.32"
UPLOT_DIR = f"vendor/uplot-{UPLOT_VERSION}"
RUNS_POLL_MS = 1000
RESULTS_MAX_POINTS = 2000

templates = Jinja2Templates(directory=WEB_DIR / "templates")


def static_url(path: str) -> str:
    """The URL of a static file, tagged with the version so that upgrades bypass caches."""
    return f"{STATIC_PREFIX}/{path}?v={engine_version()}"


templates.env.globals.update(version=engine_version, static_url=static_url, uplot_dir=UPLOT_DIR)

router = APIRouter(include_in_schema=False)
router.mount(STATIC_PREFIX, StaticFiles(directory=WEB_DIR / "static"), name="static")


@router.get("/", response_class=HTMLResponse)
async def index_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The scenario editor (with the example scenarios) and the live list of runs."""
    examples = await run_in_threadpool(load_examples)
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "api_key_required": bool(settings.api_keys),
            "examples": examples,
            "config": {
                "examples": {
                    e.name: {"text": e.text, "description": e.description} for e in examples
                },
                "pollMs": RUNS_POLL_MS,
            },
        },
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request, run_id: str, repository: AutocommitRepositoryDep, settings: SettingsDep
) -> HTMLResponse:
    """One run: status while it runs, then its summary and interactive charts.

    With API keys configured, a page request carries no key, so the page is
    rendered from the id alone and its scripts read the run with the key
    pasted in the page; the events shading and the raw sample period, which
    come from the stored scenario, are then left out.
    """
    if settings.api_keys:
        return _keyed_run_page(request, run_id)
    run = await _find_run(repository, run_id)
    if run is None:
        return templates.TemplateResponse(
            request, "not_found.html", {"run_id": run_id}, status_code=404
        )
    return templates.TemplateResponse(
        request,
        "run.html",
        {
            "run_id": run.id,
            "config": {
                "runId": run.id,
                "events": _events(run),
                "plots": list(PLOT_NAMES),
                "maxPoints": RESULTS_MAX_POINTS,
                "samplePeriodS": run.scenario.get("sim_settings", {}).get("sample_period_s"),
                "pollMs": RUNS_POLL_MS,
            },
        },
    )


def _keyed_run_page(request: Request, run_id: str) -> HTMLResponse:
    try:
        key = uuid.UUID(run_id).hex
    except ValueError:
        return templates.TemplateResponse(
            request, "not_found.html", {"run_id": run_id, "api_key_required": True}, 404
        )
    return templates.TemplateResponse(
        request,
        "run.html",
        {
            "api_key_required": True,
            "run_id": key,
            "config": {
                "runId": key,
                "events": [],
                "plots": list(PLOT_NAMES),
                "maxPoints": RESULTS_MAX_POINTS,
                "samplePeriodS": None,
                "pollMs": RUNS_POLL_MS,
            },
        },
    )


async def _find_run(repository: RunRepository, run_id: str) -> Run | None:
    try:
        key = uuid.UUID(run_id).hex
    except ValueError:
        return None
    return await repository.get(key)


def _events(run: Run) -> list[dict[str, Any]]:
    """The scenario's injected events as windows the charts shade."""
    windows = []
    for raw in run.scenario.get("events") or ():
        event = EventInjection.model_validate(raw)
        windows.append(
            {
                "id": event.event_id,
                "target": event.target_id,
                "kind": "outage" if event.is_outage else "spike",
                "start": event.start.t_start,
                "end": event.end.t_end,
                "spikeS": event.start.spike_s,
            }
        )
    return windows
