"""The parts of the OpenAPI document FastAPI cannot infer: request bodies and links.

Scenario and experiment endpoints read the raw body themselves (to bound its
size and to accept YAML), so their request body is declared here: the
`Scenario` or `ExperimentSpec` schema serialised as JSON or as YAML, with
examples for both. The links say that the `id` a submission answers is the
path parameter of every route of the run or experiment it created, so that
clients and stateful fuzzing can follow them.
"""

from typing import Any

from fastapi import FastAPI, status
from fastapi.openapi.utils import get_openapi

from asyncflow_backend.api.examples import (
    INVALID_SCENARIO,
    SMALL_EXPERIMENT,
    SMALL_EXPERIMENT_YAML,
    SMALL_SCENARIO,
    SMALL_SCENARIO_YAML,
)
from asyncflow_backend.api.models import ErrorResponse, ValidationErrorResponse
from asyncflow_backend.api.scenario_input import JSON_MEDIA_TYPE, YAML_MEDIA_TYPES
from asyncflow_backend.experiments.spec import ExperimentSpec
from asyncflow_backend.schemas.scenario import Scenario

COMPONENTS_REF = "#/components/schemas/{model}"

# The schema describes the data whatever its serialisation; the YAML examples are
# shown as YAML text so that they can be pasted as they are.
_YAML_BODY = {
    "schema": {"$ref": COMPONENTS_REF.format(model="Scenario")},
    "example": SMALL_SCENARIO_YAML,
}

SCENARIO_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A scenario. Send YAML with `Content-Type: application/yaml` "
        "(or application/x-yaml, text/yaml); anything else JSON.",
        "content": {
            JSON_MEDIA_TYPE: {
                "schema": {"$ref": COMPONENTS_REF.format(model="Scenario")},
                "examples": {
                    "small": {
                        "summary": "One server, ~10 requests/s for 60 s",
                        "value": SMALL_SCENARIO,
                    },
                    "invalid": {
                        "summary": "An edge pointing at an unknown server (422)",
                        "value": INVALID_SCENARIO,
                    },
                },
            },
            **{media: _YAML_BODY for media in YAML_MEDIA_TYPES},
        },
    }
}

EXPERIMENT_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An experiment, its scenario inline. Send YAML with "
        "`Content-Type: application/yaml` (or application/x-yaml, text/yaml); anything else JSON.",
        "content": {
            JSON_MEDIA_TYPE: {
                "schema": {"$ref": COMPONENTS_REF.format(model="ExperimentSpec")},
                "example": SMALL_EXPERIMENT,
            },
            **{
                media: {
                    "schema": {"$ref": COMPONENTS_REF.format(model="ExperimentSpec")},
                    "example": SMALL_EXPERIMENT_YAML,
                }
                for media in YAML_MEDIA_TYPES
            },
        },
    }
}

SUBMISSIONS = {"/api/v1/simulations": "run_id", "/api/v1/experiments": "experiment_id"}
"""Collections whose POST creates a resource, and the path parameter of that resource's routes."""

INVALID_EXAMPLES: dict[str, Any] = {
    "unknown_node": {
        "summary": "A problem in the scenario",
        "value": {
            "detail": [
                {
                    "loc": ["body", "topology_graph", "edges", 1, "target"],
                    "path": "topology_graph.edges[1].target",
                    "msg": "edge 'browser-api-1' ends at unknown node 'api-2'",
                    "type": "invalid_scenario",
                }
            ],
            "message": "the scenario has 1 problem",
        },
    },
    "limit": {
        "summary": "A limit exceeded",
        "value": {
            "detail": [
                {
                    "loc": ["body", "sim_settings", "total_simulation_time"],
                    "path": "sim_settings.total_simulation_time",
                    "msg": "horizon 100000 s exceeds the limit of 86400 s "
                    "(ASYNCFLOW_MAX_HORIZON_S)",
                    "type": "limit_exceeded",
                }
            ],
            "message": "the scenario has 1 problem",
        },
    },
}


SCENARIO_BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    status.HTTP_413_CONTENT_TOO_LARGE: {
        "model": ErrorResponse,
        "description": "The body is larger than ASYNCFLOW_MAX_BODY_BYTES.",
    },
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {
        "model": ErrorResponse,
        "description": "The body is neither JSON nor YAML.",
    },
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": ValidationErrorResponse,
        "description": "The scenario is invalid or exceeds a limit; every problem is listed.",
        "content": {"application/json": {"examples": INVALID_EXAMPLES}},
    },
}
"""The answers of an endpoint that reads a scenario body, besides its success."""


SCENARIO_RESPONSE: dict[int | str, dict[str, Any]] = {
    status.HTTP_200_OK: {
        "description": "The scenario as it was accepted, its defaults filled in.",
        "content": {
            "application/json": {"schema": {"$ref": COMPONENTS_REF.format(model="Scenario")}}
        },
    }
}
"""The answer of an endpoint that returns a stored scenario: the schema a submission takes."""


def _add_schemas(document: dict[str, Any], schema: dict[str, Any], name: str) -> None:
    definitions = schema.pop("$defs", {})
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for key, definition in {**definitions, name: schema}.items():
        existing = components.setdefault(key, definition)
        if existing != definition:
            raise RuntimeError(f"two different OpenAPI schemas are named {key}")


def _add_scenario_schemas(document: dict[str, Any]) -> None:
    _add_schemas(document, Scenario.model_json_schema(ref_template=COMPONENTS_REF), "Scenario")
    experiment = ExperimentSpec.model_json_schema(ref_template=COMPONENTS_REF)
    # The model keeps the scenario as data (a file may name it by path); the API takes it inline.
    experiment["properties"]["scenario"] = {
        "$ref": COMPONENTS_REF.format(model="Scenario"),
        "description": "The scenario, inline.",
    }
    _add_schemas(document, experiment, "ExperimentSpec")


def _link_submissions(document: dict[str, Any]) -> None:
    """Link the success answer of each submission in `SUBMISSIONS` to every operation on what
    it created, its `id` as their path parameter (OpenAPI 3.1, Link Object)."""
    paths = document.get("paths", {})
    for collection, parameter in SUBMISSIONS.items():
        submit = paths.get(collection, {}).get("post")
        if submit is None:
            continue
        answer = next(r for code, r in submit["responses"].items() if code.startswith("2"))
        prefix = f"{collection}/{{{parameter}}}"
        for path, item in paths.items():
            if path != prefix and not path.startswith(f"{prefix}/"):
                continue
            for operation in item.values():
                answer.setdefault("links", {})[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: "$response.body#/id"},
                    "description": operation["summary"],
                }


def _one_shape_for_422(document: dict[str, Any]) -> None:
    # FastAPI documents its own 422 body for any route with parameters; the error
    # handlers answer every 422 with ValidationErrorResponse, so say that instead.
    ours = {"$ref": COMPONENTS_REF.format(model="ValidationErrorResponse")}
    theirs = {"$ref": COMPONENTS_REF.format(model="HTTPValidationError")}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            content = response.get("content", {}).get("application/json", {})
            if content.get("schema") == theirs:
                content["schema"] = ours
                response["description"] = "A parameter is invalid; every problem is listed."
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _without_api_keys(document: dict[str, Any]) -> None:
    # An open API (no keys configured) must not document a key as required.
    for item in document.get("paths", {}).values():
        for operation in item.values():
            operation.pop("security", None)
            operation.get("responses", {}).pop("401", None)
    schemes = document.get("components", {}).get("securitySchemes", {})
    schemes.pop("APIKey", None)
    if not schemes:
        document.get("components", {}).pop("securitySchemes", None)


def install_openapi(app: FastAPI, *, api_keys: bool) -> None:
    """Make `app.openapi()` include the scenario schemas its request bodies refer to.

    The `X-API-Key` header and the 401 answer are documented only when
    `api_keys` (keys are configured), so the document describes this service.
    """

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _add_scenario_schemas(document)
            _link_submissions(document)
            _one_shape_for_422(document)
            if not api_keys:
                _without_api_keys(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
