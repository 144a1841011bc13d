"""The FastAPI application: routers, error handlers and the lifespan of its resources."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from asyncflow_backend import engine_version, web
from asyncflow_backend.api.dependencies import Service
from asyncflow_backend.api.errors import install_error_handlers
from asyncflow_backend.api.openapi import install_openapi
from asyncflow_backend.api.routers import health, plots, scenarios, simulations
from asyncflow_backend.api.views import API_PREFIX
from asyncflow_backend.config.settings import Settings, get_settings
from asyncflow_backend.db.migrate import upgrade_database
from asyncflow_backend.db.session import Database
from asyncflow_backend.jobs import make_dispatcher

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
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: from `ASYNCFLOW_*` variables).

    The database engine and the job dispatcher are created when the
    application starts and closed when it stops.
    """
    config = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(config.database_url)
        dispatcher = make_dispatcher(config, database)
        try:
            if database.engine.dialect.name == "sqlite":
                # The embedded default must run with nothing set up beforehand;
                # a shared server database is migrated by `asyncflow db upgrade`.
                await upgrade_database(database)
            await dispatcher.start()
            app.state.service = Service(config, database, dispatcher)
            yield
            await dispatcher.stop()
        finally:
            await database.dispose()

    app = FastAPI(
        title="AsyncFlow",
        version=engine_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(simulations.router, prefix=API_PREFIX)
    app.include_router(scenarios.router, prefix=API_PREFIX)
    app.include_router(plots.router, prefix=API_PREFIX)
    app.include_router(web.router)
    install_openapi(app)
    return app
