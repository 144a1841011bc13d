"""The API application: routers, error handlers and the lifespan of its resources.

The web pages are added above it, by `asyncflow_backend.main`: the API never imports them.
"""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from asyncflow_backend import engine_version
from asyncflow_backend.api.auth import UNAUTHORIZED, request_owner
from asyncflow_backend.api.chart_cache import ChartCache
from asyncflow_backend.api.dependencies import Service
from asyncflow_backend.api.errors import install_error_handlers
from asyncflow_backend.api.head import HeadAsGetMiddleware
from asyncflow_backend.api.openapi import install_openapi
from asyncflow_backend.api.parser_process import stop_parser
from asyncflow_backend.api.rate_limit import SubmissionLimiter
from asyncflow_backend.api.routers import experiments, health, plots, scenarios, simulations
from asyncflow_backend.api.security import install_security
from asyncflow_backend.api.views import API_PREFIX
from asyncflow_backend.config.settings import Settings, get_settings
from asyncflow_backend.db.migrate import upgrade_database
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs import make_dispatcher
from asyncflow_backend.jobs.retention import RetentionSweeper
from asyncflow_backend.jobs.sweep import StrandedRunSweeper

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Discrete-event simulations of asynchronous backends, as a service.

Submit a scenario to `POST /api/v1/simulations` (JSON, or YAML with
`Content-Type: application/yaml`), follow the run at the `Location` it
returns until its status is `succeeded`, then read `.../results`.
Every 422 lists each problem with its path in the scenario.
"""

TAGS = [
    {"name": "simulations", "description": "Submit, follow, read and cancel runs."},
    {"name": "scenarios", "description": "Check a scenario without running it."},
    {
        "name": "experiments",
        "description": "Replications with confidence intervals, sweeps and capacity searches.",
    },
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_api(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: from `ASYNCFLOW_*` variables), without the pages.

    The database engine, the job dispatcher, the submission rate limiter and
    the sweep for stranded runs (`jobs.sweep`) and, with a retention period,
    the retention sweep (`jobs.retention`) are created when the
    application starts and closed when it stops.
    """
    config = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(config.database_url, pool_size=config.database_pool_size)
        dispatcher = make_dispatcher(config, database)
        limiter = SubmissionLimiter(config) if config.submit_rate_limit else None
        if not config.api_keys:
            logger.warning(
                "no API keys configured (ASYNCFLOW_API_KEYS): the API is open to anyone "
                "who can reach it; fine for local use only"
            )
        try:
            if database.engine.dialect.name == "sqlite":
                # The embedded default must run with nothing set up beforehand;
                # a shared server database is migrated by `asyncflow db upgrade`.
                await upgrade_database(database)
            await dispatcher.start()
            sweeper = asyncio.create_task(
                StrandedRunSweeper(config, database, dispatcher).run(), name="stranded-run sweep"
            )
            retention = (
                asyncio.create_task(
                    RetentionSweeper(config, database).run(), name="retention sweep"
                )
                if config.retention_days > 0
                else None
            )
            charts = ChartCache(int(config.chart_cache_mb * 2**20))
            app.state.service = Service(config, database, dispatcher, limiter, charts)
            # Everything alive now (modules, schemas, routes) lives as long as
            # the process: keep it out of the collector's full passes, which
            # otherwise stall every request in flight for a few hundred ms.
            gc.freeze()
            yield
            sweeper.cancel()
            if retention is not None:
                retention.cancel()
            await dispatcher.stop()
        finally:
            stop_parser()
            if limiter is not None:
                await limiter.close()
            await database.dispose()

    app = FastAPI(
        title="AsyncFlow",
        version=engine_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served by install_security, with their own CSP
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(HeadAsGetMiddleware)
    install_security(app, config)
    app.include_router(health.router)
    for router in (simulations.router, scenarios.router, plots.router, experiments.router):
        # Every /api/v1 route needs a key when keys are configured.
        app.include_router(
            router,
            prefix=API_PREFIX,
            dependencies=[Depends(request_owner)],
            responses=UNAUTHORIZED,
        )
    install_openapi(app, api_keys=bool(config.api_keys))
    return app
