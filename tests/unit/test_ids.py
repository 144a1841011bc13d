"""Ids and labels: bounded in length, written in characters people can read, and never
echoed in full by an error.

The bound holds for every id and every reference to one, so that SQLite and
Postgres store the same ids (the `component` column of a series is 255
characters) and no id can make a chart, a page or a message huge.
"""

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncflow_backend.api.errors import ScenarioRejected
from asyncflow_backend.api.scenario_input import JSON, decode_scenario
from asyncflow_backend.config.constants import MAX_ENDPOINT_NAME_LENGTH, MAX_ID_LENGTH
from asyncflow_backend.db.models import RunSeries
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.limits import ScenarioLimits

EXAMPLE = Path(__file__).parents[2] / "example" / "event_injection_lb.yml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


ID_FIELDS: list[tuple[str | int, ...]] = [
    ("rqs_input", "id"),
    ("topology_graph", "nodes", "client", "id"),
    ("topology_graph", "nodes", "load_balancer", "id"),
    ("topology_graph", "nodes", "load_balancer", "server_covered", 0),
    ("topology_graph", "nodes", "servers", 0, "id"),
    ("topology_graph", "nodes", "servers", 0, "endpoints", 0, "endpoint_name"),
    ("topology_graph", "edges", 0, "id"),
    ("topology_graph", "edges", 0, "source"),
    ("topology_graph", "edges", 0, "target"),
    ("events", 0, "event_id"),
    ("events", 0, "target_id"),
]
"""Every id, and every reference to one, in the example (it has a balancer and events)."""


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _problems(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(data)
    return [(p.loc, str(p)) for p in caught.value.problems]


@pytest.mark.parametrize("path", ID_FIELDS)
@pytest.mark.parametrize("length", [MAX_ENDPOINT_NAME_LENGTH + 1, 300_000])
def test_every_id_has_a_length_limit_and_no_message_echoes_it(
    path: tuple[str | int, ...], length: int
) -> None:
    problems = _problems(_set(example(), path, "a" * length))

    assert path in [loc for loc, _ in problems]
    assert all(len(text) < 400 for _, text in problems)


@pytest.mark.parametrize("path", ID_FIELDS)
@pytest.mark.parametrize("bad", ["two  spaces", " edge", "line\nbreak", "<script>", "tab\t", "é"])
def test_every_id_is_written_in_readable_characters(path: tuple[str | int, ...], bad: str) -> None:
    problems = _problems(_set(example(), path, bad))

    assert any(loc == path and "use only" in text for loc, text in problems)


def test_the_longest_id_fits_the_database_columns() -> None:
    component = RunSeries.__table__.c.component.type.length
    assert component is not None
    assert component >= MAX_ID_LENGTH


def test_ids_at_the_limit_and_route_like_endpoint_names_are_accepted() -> None:
    data = example()
    server = data["topology_graph"]["nodes"]["servers"][0]
    server["endpoints"][0]["endpoint_name"] = "GET /orders/{order_id}:v2"
    long_id = "a" * MAX_ID_LENGTH
    data = json.loads(json.dumps(data).replace(f'"{server["id"]}"', f'"{long_id}"'))

    scenario = parse_scenario(data)

    assert scenario.topology_graph.nodes.servers[0].id == long_id


def test_a_space_separates_words_in_an_endpoint_name_but_not_in_an_id() -> None:
    path = ("topology_graph", "nodes", "servers", 0, "endpoints", 0, "endpoint_name")
    parse_scenario(_set(example(), path, "GET /orders"))

    problems = _problems(_set(example(), ("events", 0, "event_id"), "GET orders"))

    assert [loc for loc, _ in problems] == [("events", 0, "event_id")]


def test_a_megabyte_id_sent_to_the_api_gets_a_short_answer() -> None:
    body = json.dumps(_set(example(), ("events", 0, "event_id"), "x" * 1_000_000)).encode()

    with pytest.raises(ScenarioRejected) as caught:
        decode_scenario(body, JSON, ScenarioLimits(), 2_000_000)

    text = " ".join(f"{p.path} {p.message}" for p, _ in caught.value.problems)
    assert "events[0].event_id" in text
    assert len(text) < 400


def test_an_unknown_key_a_megabyte_long_is_shortened_in_the_path() -> None:
    data = example()
    data["topology_graph"]["nodes"]["client"]["k" * 1_000_000] = 1

    [(loc, text)] = _problems(data)

    assert loc[:4] == ("topology_graph", "nodes", "client", loc[3])
    assert len(text) < 400


def test_charts_of_the_longest_ids_keep_their_layout() -> None:
    from asyncflow_backend.plots import PLOT_NAMES, render_plot
    from asyncflow_backend.runtime.runner import SimulationRunner

    text = json.dumps(example())
    for old in ("node-1", "node-2", "gateway", "storefront", "storefront-gateway"):
        text = text.replace(f'"{old}"', f'"{(old + "-").ljust(MAX_ID_LENGTH, "x")}"')
    data = json.loads(text)
    for i, event in enumerate(data["events"]):
        event["event_id"] = f"event-{i}-".ljust(MAX_ID_LENGTH, "w")
    scenario = parse_scenario(data)
    results = SimulationRunner(scenario, seed=1).run()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = [
            render_plot(name, results, events=scenario.events, fmt="svg") for name in PLOT_NAMES
        ]

    assert [str(w.message) for w in caught] == []
    assert max(len(image) for image in images) < 2_000_000


@pytest.mark.parametrize("bad", ["a" * (MAX_ID_LENGTH + 1), "two words", "é"])
def test_pool_names_and_balancer_weight_keys_are_ids_too(bad: str) -> None:
    servers = ("topology_graph", "nodes", "servers", 0)
    step = (*servers, "endpoints", 0, "steps", 0)
    balancer = ("topology_graph", "nodes", "load_balancer")
    data = example()
    data = _set(data, (*servers, "server_resources", "connection_pools"), {bad: 2})
    data = _set(data, (*step, "pool"), bad)
    data = _set(data, (*balancer, "weights"), {bad: 2})
    data = _set(data, (*balancer, "algorithms"), "weighted_round_robin")
    data["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][0]["kind"] = "io_db"
    data["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][0]["step_operation"] = {
        "io_waiting_time": 0.01
    }

    problems = _problems(data)

    for field in (
        (*servers, "server_resources", "connection_pools"),
        (*step, "pool"),
        (*balancer, "weights"),
    ):
        assert any(loc[: len(field)] == field for loc, _ in problems), field
    assert all(len(text) < 400 for _, text in problems)
