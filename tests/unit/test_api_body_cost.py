"""Large bodies spend the submission allowance by their size, YAML six times JSON, and large
YAML is parsed outside the API process, so no caller takes more than its share of its CPU."""

import json
from pathlib import Path

import pytest
import yaml
from api_support import api_client, sqlite_settings

from asyncflow_backend.api import scenario_input
from asyncflow_backend.api.examples import SMALL_SCENARIO
from asyncflow_backend.api.rate_limit import body_cost
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.schemas import loading

VALIDATE = "/api/v1/scenarios/validate"
YAML_HEADERS = {"content-type": "application/yaml"}
JSON_HEADERS = {"content-type": "application/json"}


def yaml_body(size: int) -> bytes:
    """The small scenario as YAML, padded with comment lines to `size` bytes."""
    text = yaml.safe_dump(SMALL_SCENARIO)
    padding = size - len(text)
    lines = ["#" + "x" * 79 + "\n"] * (padding // 81)
    body = (text + "".join(lines)).encode()
    return body + b"#" * (size - len(body) - 1) + b"\n"


def test_a_body_costs_one_unit_per_started_unit_of_json_and_six_times_that_of_yaml() -> None:
    assert body_cost(10, "json", 65_536) == 1
    assert body_cost(65_537, "json", 65_536) == 2
    assert body_cost(10_922, "yaml", 65_536) == 1
    assert body_cost(10_923, "yaml", 65_536) == 2
    assert body_cost(1_048_576, "yaml", 65_536) == 96


@pytest.fixture
def limited(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path, submit_rate_limit="12/minute", submit_rate_unit_bytes=6144)


@pytest.fixture
def unlimited(tmp_path: Path) -> Settings:
    return sqlite_settings(tmp_path, submit_rate_limit="")


async def test_large_yaml_bodies_spend_the_allowance_by_their_size(limited: Settings) -> None:
    body = yaml_body(5000)  # 6 x 5000 / 6144: 5 units
    async with api_client(limited) as client:
        first = await client.post(VALIDATE, content=body, headers=YAML_HEADERS)
        second = await client.post(VALIDATE, content=body, headers=YAML_HEADERS)
        refused = await client.post(VALIDATE, content=body, headers=YAML_HEADERS)
        # The same scenario as JSON costs one unit: two are left.
        small = await client.post(VALIDATE, json=SMALL_SCENARIO)

    assert [first.status_code, second.status_code] == [200, 200]
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert "this body costs 5 submissions" in detail
    assert "ASYNCFLOW_SUBMIT_RATE_UNIT_BYTES" in detail
    assert "ASYNCFLOW_SUBMIT_RATE_LIMIT" in detail
    assert small.status_code == 200


async def test_large_bodies_are_parsed_and_checked_outside_the_api_process(
    unlimited: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_here(*_: object) -> None:
        raise AssertionError("parsed in the API process")

    # The parser process imports these afresh; this process must not call them.
    monkeypatch.setattr(loading, "load_yaml", not_here)
    monkeypatch.setattr(loading, "load_json", not_here)
    monkeypatch.setattr(scenario_input, "parse_scenario", not_here)
    large_json = json.dumps(SMALL_SCENARIO).encode() + b" " * 20_000
    async with api_client(unlimited) as client:
        answer = await client.post(VALIDATE, content=yaml_body(20_000), headers=YAML_HEADERS)
        as_json = await client.post(VALIDATE, content=large_json, headers=JSON_HEADERS)
        broken = await client.post(
            VALIDATE, content=yaml_body(20_000) + b"\n: : [", headers=YAML_HEADERS
        )
        too_big = await client.post(
            VALIDATE, content=large_json.replace(b'"rqs_input"', b'"rqs_inputs"', 1)
        )

    assert answer.status_code == 200, answer.text
    assert as_json.status_code == 200, as_json.text
    assert broken.status_code == 422
    assert "invalid YAML at line" in broken.text
    assert too_big.status_code == 422
    assert "rqs_inputs" in too_big.text
