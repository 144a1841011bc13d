"""The OpenAPI document describes every endpoint, answer and body, with working examples."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from api_support import api_client, sqlite_settings
from fastapi import FastAPI

from asyncflow_backend.api.examples import SMALL_EXPERIMENT
from asyncflow_backend.api.openapi import INVALID_EXAMPLES, SUBMISSIONS
from asyncflow_backend.api.scenario_input import YAML_MEDIA_TYPES
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.main import create_app
from asyncflow_backend.schemas.loading import (
    ScenarioValidationError,
    parse_scenario,
    parse_scenario_text,
)

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", redis_url=None))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_endpoint_of_the_service_is_documented(document: dict[str, Any]) -> None:
    found = {(method.upper(), path) for method, path, _ in _operations(document)}
    assert found >= {
        ("GET", "/health"),
        ("GET", "/ready"),
        ("POST", "/api/v1/simulations"),
        ("GET", "/api/v1/simulations"),
        ("GET", "/api/v1/simulations/{run_id}"),
        ("DELETE", "/api/v1/simulations/{run_id}"),
        ("GET", "/api/v1/simulations/{run_id}/results"),
        ("GET", "/api/v1/simulations/{run_id}/timeseries"),
        ("POST", "/api/v1/simulations/{run_id}/cancel"),
        ("POST", "/api/v1/experiments/{experiment_id}/cancel"),
        ("DELETE", "/api/v1/experiments/{experiment_id}"),
        ("POST", "/api/v1/scenarios/validate"),
    }


def test_every_answer_has_a_schema(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        assert operation.get("tags"), (method, path)
        assert operation.get("summary"), (method, path)
        assert "500" in operation["responses"], (method, path)
        for code, response in operation["responses"].items():
            if code == "204":  # No Content: no body, by definition
                assert "content" not in response, (method, path)
                continue
            assert response["content"], (method, path, code)
            for media, body in response["content"].items():
                assert body["schema"], (method, path, code, media)
            if not code.startswith("2"):
                assert "application/json" in response["content"], (method, path, code)


def test_422_always_has_the_problem_list_shape(document: dict[str, Any]) -> None:
    expected = "#/components/schemas/ValidationErrorResponse"
    for method, path, operation in _operations(document):
        if operation.get("parameters") or operation.get("requestBody"):
            response = operation["responses"]["422"]
            schema = response["content"]["application/json"]["schema"]
            assert schema["$ref"] == expected, (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_database_endpoints_declare_503(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if path.startswith("/api/v1/simulations") or path == "/ready":
            assert "503" in operation["responses"], (method, path)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for ref in set(_refs(document)):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


@pytest.mark.parametrize("path", ["/api/v1/simulations", "/api/v1/scenarios/validate"])
def test_scenario_bodies_are_json_or_yaml_with_examples(
    document: dict[str, Any], path: str
) -> None:
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    content = body["content"]
    json_body = content["application/json"]
    assert json_body["schema"] == {"$ref": "#/components/schemas/Scenario"}
    examples = json_body["examples"]
    assert parse_scenario(examples["small"]["value"])
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(examples["invalid"]["value"])
    documented = INVALID_EXAMPLES["unknown_node"]["value"]["detail"][0]
    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == (documented["path"], documented["msg"])
    for media in YAML_MEDIA_TYPES:
        assert content[media]["schema"] == json_body["schema"]
        assert parse_scenario_text(content[media]["example"]) == parse_scenario(
            examples["small"]["value"]
        )


def test_responses_carry_examples(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["RunView"]["examples"]
    submit = document["paths"]["/api/v1/simulations"]["post"]["responses"]
    assert submit["422"]["content"]["application/json"]["examples"] == INVALID_EXAMPLES
    assert "Location" in submit["202"]["headers"]


def test_tags_are_described(document: dict[str, Any]) -> None:
    described = {tag["name"] for tag in document["tags"]}
    used = {tag for _, _, op in _operations(document) for tag in op["tags"]}
    assert used == described


async def test_docs_and_openapi_are_served(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        served = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert served == app.openapi()
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_validation_and_submission_document_their_warnings(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    warning = {"$ref": "#/components/schemas/WarningItem"}
    assert set(schemas["WarningItem"]["properties"]) == {"loc", "path", "msg"}
    for name in ("ValidationReport", "SubmittedRun"):
        assert schemas[name]["properties"]["warnings"]["items"] == warning, name
    submit = document["paths"]["/api/v1/simulations"]["post"]["responses"]["202"]
    assert submit["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SubmittedRun"
    }


def _schema_of(document: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_the_experiment_body_is_json_or_yaml_with_a_valid_example(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/api/v1/experiments"]["post"]["requestBody"]
    content = body["content"]
    spec = _schema_of(document, content["application/json"]["schema"]["$ref"])
    assert spec["properties"]["scenario"]["$ref"] == "#/components/schemas/Scenario"
    assert {"replications", "sweep", "search"} <= set(spec["properties"])
    for media in YAML_MEDIA_TYPES:
        assert yaml.safe_load(content[media]["example"]) == content["application/json"]["example"]


@pytest.mark.parametrize(("collection", "parameter"), sorted(SUBMISSIONS.items()))
def test_a_submission_links_to_every_operation_on_what_it_created(
    document: dict[str, Any], collection: str, parameter: str
) -> None:
    operations = {
        op["operationId"]: (method, path, op) for method, path, op in _operations(document)
    }
    below = f"{collection}/{{{parameter}}}"
    expected = {
        op_id
        for op_id, (_, path, _) in operations.items()
        if path == below or path.startswith(f"{below}/")
    }
    answer = document["paths"][collection]["post"]["responses"]["202"]
    links = answer["links"]
    assert {link["operationId"] for link in links.values()} == expected
    linked = {(operations[op_id][0], operations[op_id][1]) for op_id in expected}
    assert {("get", below), ("post", f"{below}/cancel")} <= linked
    for link in links.values():
        _, _, operation = operations[link["operationId"]]
        in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert parameter in in_path
        assert link["parameters"] == {parameter: "$response.body#/id"}
    # The id the links read is always in the answer.
    created = _schema_of(document, answer["content"]["application/json"]["schema"]["$ref"])
    assert "id" in created["required"]
    assert created["properties"]["id"]["type"] == "string"


@pytest.fixture
def experiment_settings(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path)


async def test_the_experiment_links_lead_to_the_experiment_created(
    experiment_settings: Settings,
) -> None:
    async with api_client(experiment_settings) as client:
        document = (await client.get("/openapi.json")).json()
        operations = {op["operationId"]: (m, p) for m, p, op in _operations(document)}
        created = await client.post("/api/v1/experiments", json=SMALL_EXPERIMENT)
        assert created.status_code == 202, created.text
        links = document["paths"]["/api/v1/experiments"]["post"]["responses"]["202"]["links"]
        # DELETE last: it removes the experiment the other links read.
        ordered = sorted(
            links.values(), key=lambda link: operations[link["operationId"]][0] == "delete"
        )
        for link in ordered:
            method, path = operations[link["operationId"]]
            ((name, expression),) = link["parameters"].items()
            assert expression == "$response.body#/id"
            url = path.replace(f"{{{name}}}", created.json()["id"])
            answer = await client.request(method, url)
            assert answer.status_code < 500, (method, url, answer.text)
            assert "no experiment with id" not in answer.text, (method, url)
