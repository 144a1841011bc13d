"""The HTML pages: `/` (editor and runs list), `/runs/{id}`, `/experiments/{id}`, `/static`.

Pages are rendered on the server with autoescaping Jinja2 templates; what
changes while a page is open (validation problems, run status, results,
charts) is fetched from the JSON API by the page's static scripts. No page
holds inline script code or inline styles, so a strict Content-Security-Policy
(`script-src 'self'; style-src 'self'`) suits them: data the scripts need is
passed in `application/json` blocks, which browsers never execute.
"""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from asyncflow_backend import engine_version
from asyncflow_backend.api.dependencies import AutocommitRepositoryDep, SettingsDep
from asyncflow_backend.api.errors import clip
from asyncflow_backend.api.views import run_key
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.metrics.catalogue import catalogue_document
from asyncflow_backend.plots import PLOT_NAMES
from asyncflow_backend.plots.style import COMPONENT_PALETTE
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

    The page's scripts read the run, its results and its scenario (for the
    injected events) through the API. With API keys configured, a page
    request carries no key, so the page is rendered from the id alone and its
    scripts use the key pasted in the page.
    """
    key = run_key(run_id)
    keyed = bool(settings.api_keys)
    if key is None or (not keyed and await repository.get(key) is None):
        return templates.TemplateResponse(
            request,
            "not_found.html",
            {"run_id": clip(run_id), "api_key_required": keyed},
            status_code=404,
        )
    return templates.TemplateResponse(
        request,
        "run.html",
        {
            "api_key_required": keyed,
            "run_id": key,
            "config": {
                "runId": key,
                "plots": list(PLOT_NAMES),
                "metrics": catalogue_document(),
                "palette": list(COMPONENT_PALETTE),
                "maxPoints": RESULTS_MAX_POINTS,
                "pollMs": RUNS_POLL_MS,
            },
        },
    )


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
async def experiment_page(
    request: Request,
    experiment_id: str,
    repository: AutocommitRepositoryDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """One experiment: progress, the chart of a metric with confidence bands, every point.

    As for a run's page, with API keys the page is rendered from the id alone
    and its script reads the experiment with the key pasted in the page.
    """
    key = run_key(experiment_id)
    keyed = bool(settings.api_keys)
    if key is None or (
        not keyed and await ExperimentRepository(repository.session).get(key) is None
    ):
        return templates.TemplateResponse(
            request,
            "not_found.html",
            {"run_id": experiment_id, "api_key_required": keyed, "what": "experiment"},
            status_code=404,
        )
    return templates.TemplateResponse(
        request,
        "experiment.html",
        {
            "api_key_required": keyed,
            "experiment_id": key,
            "config": {"experimentId": key, "pollMs": RUNS_POLL_MS},
        },
    )
