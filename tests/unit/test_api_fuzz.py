"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation gets a bounded number of generated requests, valid and
invalid ones, derandomized so that a run is reproducible, sent in-process to
the application (SQLite, local pool). Each answer must be no 5xx, carry a
documented status code, content type and headers, match the documented
schema, accept valid data and refuse invalid data (`schemathesis.toml` at the
root spells out the semantics the schema cannot).
"""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from asyncflow_backend.config.settings import Settings
from asyncflow_backend.main import create_app

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]


ROOT = Path(__file__).resolve().parents[2]
# Made by the fixture below, not at import: collecting the tests must not create files.
DATABASE_DIR = Path(tempfile.gettempdir()) / f"asyncflow-fuzz-{uuid.uuid4().hex[:12]}"

# The application is built at import, as schemathesis needs its schema to generate the
# tests; nothing starts until the first request (the lifespan: database, worker pool).
app = create_app(
    Settings(
        database_url=f"sqlite+aiosqlite:///{DATABASE_DIR / 'fuzz.db'}",
        redis_url=None,
        local_workers=1,
        api_keys="",  # open, whatever the environment says
        submit_rate_limit="",  # thousands of submissions from one client, on purpose
        max_expected_requests=2_000,  # accepted runs stay tiny
        max_experiment_replications=20,  # and accepted experiments few
        max_samples=50_000,
    )
)
schema = schemathesis.openapi.from_dict(
    app.openapi(), config=schemathesis.Config.from_path(ROOT / "schemathesis.toml")
)
schema.app = app  # requests go to the application in-process


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    """The application's files; its lifespan is stopped (worker pool included) at the end."""
    DATABASE_DIR.mkdir()
    yield
    asgi.shutdown_lifespans()
    shutil.rmtree(DATABASE_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    # Ids carry a pattern, and dict keys too (pool names, balancer weights): generating
    # them filters many drafts, which is slow, not wrong.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_keeps_its_documented_promises(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_stateful_fuzzing_follows_submissions_to_every_route_of_what_they_created() -> None:
    # Schemathesis' stateful phase reaches an operation only through a link into it.
    reached = schema.operations_with_incoming_links()
    assert {
        "GET /api/v1/experiments/{experiment_id}",
        "POST /api/v1/experiments/{experiment_id}/cancel",
        "GET /api/v1/experiments/{experiment_id}/plot",
        "GET /api/v1/simulations/{run_id}",
        "GET /api/v1/simulations/{run_id}/results",
    } <= reached
