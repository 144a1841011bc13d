"""Reading a scenario from a request body: formats, hostile documents, limits."""

import gzip
import json
import math

import pytest
import yaml

from asyncflow_backend.api.errors import ScenarioRejected, UnsupportedMediaType
from asyncflow_backend.api.examples import SMALL_SCENARIO, SMALL_SCENARIO_YAML
from asyncflow_backend.api.scenario_input import (
    JSON,
    YAML,
    body_format,
    decode_scenario,
    document_problems,
    refuse_encoded,
)
from asyncflow_backend.schemas.limits import ScenarioLimits
from asyncflow_backend.schemas.loading import ScenarioYamlLoader, load_yaml, parse_scenario

LIMITS = ScenarioLimits()
MAX_VALUES = 100_000


def _rejected(body: bytes, fmt: str = JSON, limits: ScenarioLimits = LIMITS) -> list[str]:
    with pytest.raises(ScenarioRejected) as caught:
        decode_scenario(body, fmt, limits, MAX_VALUES)
    return [f"{p.path}: {p.message} [{kind}]" for p, kind in caught.value.problems]


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        (None, JSON),
        ("application/json", JSON),
        ("application/json; charset=utf-8", JSON),
        ("application/merge-patch+json", JSON),
        ("application/yaml", YAML),
        ("Application/X-YAML", YAML),
        ("text/yaml; charset=utf-8", YAML),
    ],
)
def test_body_format_follows_the_content_type(header: str | None, fmt: str) -> None:
    assert body_format(header) == fmt


@pytest.mark.parametrize("header", ["text/plain", "multipart/form-data; boundary=x", "image/png"])
def test_other_content_types_are_refused(header: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="application/yaml"):
        body_format(header)


@pytest.mark.parametrize("header", [";;;", " ", "; charset=utf-8"])
def test_a_content_type_without_a_media_type_is_refused_saying_what_came(header: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        body_format(header)
    message = str(caught.value)
    assert f"the Content-Type {header!r} names no media type" in message
    assert "send one of application/json" in message
    assert "''" not in message


def test_json_and_yaml_give_the_same_scenario() -> None:
    from_json = decode_scenario(json.dumps(SMALL_SCENARIO).encode(), JSON, LIMITS, MAX_VALUES)
    from_yaml = decode_scenario(SMALL_SCENARIO_YAML.encode(), YAML, LIMITS, MAX_VALUES)
    assert from_json == from_yaml == parse_scenario(SMALL_SCENARIO)


@pytest.mark.parametrize("fmt", [JSON, YAML])
def test_a_byte_order_mark_is_accepted(fmt: str) -> None:
    text = json.dumps(SMALL_SCENARIO) if fmt == JSON else SMALL_SCENARIO_YAML
    scenario = decode_scenario(b"\xef\xbb\xbf" + text.encode(), fmt, LIMITS, MAX_VALUES)
    assert scenario == parse_scenario(SMALL_SCENARIO)


def test_syntax_errors_say_where() -> None:
    (problem,) = _rejected(b'{"rqs_input": ', JSON)
    assert "invalid JSON at line 1" in problem
    (problem,) = _rejected(b"rqs_input: [unclosed\n", YAML)
    assert "invalid YAML at line" in problem


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "the body is empty"),
        (b"  \n", "the body is empty"),
        (b"[" * 100_000, "nested too deeply"),
        (b"42", "must be a mapping"),
    ],
)
def test_unreadable_bodies_are_one_problem(body: bytes, expected: str) -> None:
    (problem,) = _rejected(body)
    assert expected in problem


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"\xc3\x28 rqs_input: 1", "not UTF-8"),
        (gzip.compress(json.dumps(SMALL_SCENARIO).encode()), "gzip-compressed"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 8, "zstd-compressed"),
    ],
)
@pytest.mark.parametrize("fmt", [JSON, YAML])
def test_binary_or_compressed_bodies_are_unsupported_media(
    body: bytes, expected: str, fmt: str
) -> None:
    with pytest.raises(UnsupportedMediaType, match=expected):
        decode_scenario(body, fmt, LIMITS, MAX_VALUES)


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_a_content_encoding_is_unsupported_media(encoding: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding"):
        refuse_encoded(encoding)
    refuse_encoded(None)
    refuse_encoded("identity")


def test_impossible_yaml_dates_are_text_not_a_crash() -> None:
    (problem,) = _rejected(b"- 2024-13-45\n", YAML)
    assert "must be a mapping, got list" in problem


@pytest.mark.parametrize(
    ("body", "fmt", "expected"),
    [
        (b'{"seed": 1, "seed": 2}', JSON, "duplicate key 'seed'"),
        (b'{"a": {"id": "x", "id": "y"}}', JSON, "duplicate key 'id'"),
        (b"seed: 1\nseed: 2\n", YAML, "line 2, column 1: duplicate key 'seed'"),
        (b"a:\n  id: x\n  id: y\n", YAML, "line 3, column 3: duplicate key 'id'"),
        (b"a: 1\nb: 2\n'a': 3\n", YAML, "line 3, column 1: duplicate key 'a'"),
    ],
)
def test_duplicate_keys_are_refused_naming_the_key(body: bytes, fmt: str, expected: str) -> None:
    (problem,) = _rejected(body, fmt)
    assert expected in problem


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1:30", "1:30"),  # YAML 1.1: 90 (base 60)
        ("012", 12),  # YAML 1.1: 10 (octal)
        ("0o12", 10),
        ("0x1F", 31),
        ("yes", "yes"),  # YAML 1.1: true
        ("off", "off"),
        ("True", True),
        ("~", None),
        ("1e-3", 0.001),  # YAML 1.1: text
        ("-.inf", -math.inf),
        ("2024-01-02", "2024-01-02"),  # YAML 1.1: a date
        ("1_000", "1_000"),  # YAML 1.1: 1000
        ("<<", "<<"),  # YAML 1.1: a merge key
    ],
)
def test_yaml_is_read_with_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    assert load_yaml(f"v: {text}\n") == {"v": value}


@pytest.mark.parametrize(
    "tagged",
    [
        "!!binary aGVsbG8=",
        "!!timestamp 2024-01-02",
        "!!set {a: null}",
        "!!omap [a: 1]",
        "!!python/object:os.system x",
        "!custom 1",
    ],
)
def test_tags_beyond_the_core_schema_are_refused(tagged: str) -> None:
    (problem,) = _rejected(f"rqs_input: {tagged}\n".encode(), YAML)
    assert "invalid YAML at line 1" in problem
    assert "constructor" in problem


def test_every_scenario_problem_is_listed_with_its_path() -> None:
    bad = json.loads(json.dumps(SMALL_SCENARIO))
    bad["topology_graph"]["edges"][1]["target"] = "api-2"
    bad["sim_settings"]["total_simulation_time"] = -1
    problems = _rejected(json.dumps(bad).encode())
    assert any(p.startswith("sim_settings.total_simulation_time:") for p in problems)
    assert all(p.endswith("[invalid_scenario]") for p in problems)


def test_a_breached_limit_names_the_limit() -> None:
    (problem,) = _rejected(
        json.dumps(SMALL_SCENARIO).encode(), limits=ScenarioLimits(max_horizon_s=30)
    )
    assert problem.startswith("sim_settings.total_simulation_time:")
    assert "ASYNCFLOW_MAX_HORIZON_S" in problem
    assert problem.endswith("[limit_exceeded]")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_where_they_are(value: float) -> None:
    bad = json.loads(json.dumps(SMALL_SCENARIO))
    bad["topology_graph"]["edges"][0]["latency"]["variance"] = value
    (problem,) = _rejected(json.dumps(bad).encode())
    assert problem.startswith("topology_graph.edges[0].latency.variance:")
    assert "finite" in problem


def test_nul_and_lone_surrogates_are_refused() -> None:
    bad = json.loads(json.dumps(SMALL_SCENARIO))
    bad["rqs_input"]["id"] = "vis\u0000itors"
    bad["topology_graph"]["nodes"]["client"]["id"] = "\ud800"
    problems = _rejected(json.dumps(bad).encode())
    assert any(p.startswith("rqs_input.id:") and "NUL" in p for p in problems)
    assert any(
        p.startswith("topology_graph.nodes.client.id:") and "surrogate" in p for p in problems
    )


def test_yaml_alias_bombs_are_refused_before_anything_is_built() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "\n".join(lines).encode()
    assert len(bomb) < 1000
    (problem,) = _rejected(bomb, YAML)
    assert "more than 10000 values once its YAML aliases (*name) are expanded" in problem
    assert "invalid YAML at line 4" in problem  # a3: 11,111 values, the first too many


def test_the_alias_budget_grows_with_the_text_not_beyond() -> None:
    aliased = "base: &b [" + ", ".join(["1"] * 100) + "]\nuse: [" + ", ".join(["*b"] * 60) + "]\n"
    assert len(aliased) < 10_000
    assert load_yaml(aliased)["use"][59] == [1] * 100  # 6,162 values: within 10,000
    padded = aliased + "# " + "-" * 20_000 + "\n"
    more = aliased.replace(", ".join(["*b"] * 60), ", ".join(["*b"] * 120))
    assert len(load_yaml(padded + more.split("\n")[1].replace("use", "more"))["more"]) == 120
    with pytest.raises(yaml.YAMLError, match="more than 10000 values"):
        load_yaml(more)


def test_yaml_aliases_within_the_budget_are_fine() -> None:
    document = yaml.safe_dump(SMALL_SCENARIO, default_flow_style=None, sort_keys=False)
    latency = "latency: {mean: 0.002, distribution: exponential}"
    assert document.count(latency) == 3
    anchored = document.replace(
        latency, "latency: &hop {mean: 0.002, distribution: exponential}", 1
    )
    anchored = anchored.replace(latency, "latency: *hop")
    assert "*hop" in anchored
    scenario = decode_scenario(anchored.encode(), YAML, LIMITS, MAX_VALUES)
    assert scenario == parse_scenario(SMALL_SCENARIO)


def test_a_recursive_yaml_alias_is_refused() -> None:
    (problem,) = _rejected(b"a: &a [1, *a]\n", YAML)
    assert "refers to a value that holds it" in problem


def test_the_document_walk_reports_at_most_fifty_problems() -> None:
    assert len(document_problems([math.nan] * 500, 10_000)) == 50
    assert document_problems({"a": [1, 2.5, "ok"]}, 10) == []


def test_yaml_is_parsed_by_libyaml_where_pyyaml_has_it() -> None:
    # libyaml reads a large document about ten times faster than PyYAML's own parser.
    base = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    assert issubclass(ScenarioYamlLoader, base)
