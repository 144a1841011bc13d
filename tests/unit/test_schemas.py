"""Structural validation by the models: types, unknown fields, bounds, defaults, parsing.

Every rejection must come as a `ScenarioValidationError` whose problems carry
the path of the offending field and name the object (node, edge, event,
endpoint) it belongs to.
"""

import json
import typing
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from asyncflow_backend.config.constants import (
    CacheStepKind,
    CallStepKind,
    CpuStepKind,
    Distribution,
    EventKind,
    EventMetric,
    IoStepKind,
    LoadBalancerAlgorithm,
    RamStepKind,
    SampledMetric,
    StepOperation,
)
from asyncflow_backend.schemas import (
    Problem,
    Scenario,
    ScenarioValidationError,
    load_scenario_file,
    parse_scenario,
    parse_scenario_text,
)
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.settings import SimulationSettings
from asyncflow_backend.schemas.steps import STEP_MODELS
from asyncflow_backend.schemas.topology import ServerResources
from support.documents import (
    balancer,
    cpu,
    edge,
    exponential,
    generator,
    io,
    outage,
    ram,
    scenario_document,
    server,
)

SERVER = ("topology_graph", "nodes", "servers")


def base_document() -> dict[str, Any]:
    """A small valid scenario: generator, client, balancer, two servers, one outage."""
    steps = (cpu(0.002, kind="initial_parsing"), ram(64), io(0.01))
    servers = [
        server(s, *steps, endpoint_name="/api", cpu_cores=1, ram_mb=1024)
        for s in ("srv-1", "srv-2")
    ]
    hops = [("gen", "client"), ("client", "lb"), ("lb", "srv-1"), ("lb", "srv-2")]
    hops += [("srv-1", "client"), ("srv-2", "client")]
    return scenario_document(
        generator(10, rpm=30),
        servers,
        [edge(*hop, latency=exponential(0.002), dropout=None) for hop in hops],
        horizon_s=60,
        load_balancer=balancer("srv-1", "srv-2"),
        events=[outage("down-1", "srv-1", start=10, end=20)],
    )


def problems(document: Any) -> list[Problem]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return caught.value.problems


def the_problem(document: Any, path: str, *named: str) -> Problem:
    """The single problem of `document`, asserting its path and the ids it names."""
    found = problems(document)
    assert [p.path for p in found] == [path], found
    for name in named:
        assert name in found[0].message, found[0]
    return found[0]


def first_step(document: dict[str, Any], server: int = 0) -> dict[str, Any]:
    step: dict[str, Any] = document["topology_graph"]["nodes"]["servers"][server]["endpoints"][0][
        "steps"
    ][0]
    return step


def test_the_base_document_is_valid() -> None:
    scenario = parse_scenario(base_document())

    assert isinstance(scenario, Scenario)
    assert scenario.topology_graph.nodes.load_balancer is not None


# Text that is not a scenario.


def test_bad_yaml_is_located_by_line_and_column() -> None:
    text = "rqs_input:\n  id: gen\n  avg_active_users: { mean: 10\ntopology_graph: {}\n"

    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario_text(text)

    (problem,) = caught.value.problems
    assert problem.path == "(scenario)"
    assert "invalid YAML at line 4, column 1" in problem.message


def test_bad_json_is_located_by_line_and_column() -> None:
    text = '{\n  "rqs_input": {"id": "gen",}\n}'

    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario_text(text, "json")

    (problem,) = caught.value.problems
    assert "invalid JSON at line 2, column 29" in problem.message


@pytest.mark.parametrize(("text", "kind"), [("", "nothing"), ("- 1\n- 2\n", "list"), ("7", "int")])
def test_a_document_must_be_a_mapping(text: str, kind: str) -> None:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario_text(text)

    (problem,) = caught.value.problems
    assert problem.path == "(scenario)"
    assert kind in problem.message


def test_unreadable_file(tmp_path: Any) -> None:
    missing = tmp_path / "absent.yml"

    with pytest.raises(ScenarioValidationError, match="cannot read"):
        load_scenario_file(missing)


def test_json_and_yaml_files_give_the_same_scenario(tmp_path: Any) -> None:
    document = base_document()
    as_json = tmp_path / "s.json"
    as_yaml = tmp_path / "s.yaml"
    as_json.write_text(json.dumps(document), encoding="utf-8")
    as_yaml.write_text(json.dumps(document, indent=2), encoding="utf-8")  # JSON is YAML

    assert load_scenario_file(as_json) == load_scenario_file(as_yaml) == parse_scenario(document)


# Unknown fields and wrong types.


@pytest.mark.parametrize(
    ("where", "path", "owner"),
    [
        (("rqs_input",), "rqs_input.burst", "gen"),
        (("topology_graph", "nodes", "client"), "topology_graph.nodes.client.burst", "client"),
        (
            ("topology_graph", "nodes", "load_balancer"),
            "topology_graph.nodes.load_balancer.burst",
            "lb",
        ),
        ((*SERVER, 1), "topology_graph.nodes.servers[1].burst", "srv-2"),
        (
            (*SERVER, 1, "server_resources"),
            "topology_graph.nodes.servers[1].server_resources.burst",
            "srv-2",
        ),
        (
            (*SERVER, 0, "endpoints", 0),
            "topology_graph.nodes.servers[0].endpoints[0].burst",
            "/api",
        ),
        (("topology_graph", "edges", 3), "topology_graph.edges[3].burst", "lb-srv-2"),
        (
            ("topology_graph", "edges", 3, "latency"),
            "topology_graph.edges[3].latency.burst",
            "lb-srv-2",
        ),
        (("sim_settings",), "sim_settings.burst", ""),
        (("events", 0), "events[0].burst", "down-1"),
        (("events", 0, "start"), "events[0].start.burst", "down-1"),
        ((), "burst", ""),
    ],
)
def test_unknown_fields_are_rejected_where_they_are(
    where: tuple[str | int, ...], path: str, owner: str
) -> None:
    document = base_document()
    target: Any = document
    for part in where:
        target = target[part]
    target["burst"] = 3

    problem = the_problem(document, path, owner)
    assert "Extra inputs are not permitted" in problem.message


@pytest.mark.parametrize(
    ("change", "path", "owner"),
    [
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][1]["server_resources"].update(
                cpu_cores="many"
            ),
            "topology_graph.nodes.servers[1].server_resources.cpu_cores",
            "srv-2",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["server_resources"].update(
                ram_mb=[1024]
            ),
            "topology_graph.nodes.servers[0].server_resources.ram_mb",
            "srv-1",
        ),
        (
            lambda d: d["topology_graph"]["edges"][2].update(dropout_rate="often"),
            "topology_graph.edges[2].dropout_rate",
            "lb-srv-1",
        ),
        (
            lambda d: d["topology_graph"]["edges"][2].update(latency=0.002),
            "topology_graph.edges[2].latency",
            "lb-srv-1",
        ),
        (
            lambda d: d["rqs_input"].update(user_sampling_window="hourly"),
            "rqs_input.user_sampling_window",
            "gen",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][0].update(
                step_operation={"cpu_time": "fast"}
            ),
            "topology_graph.nodes.servers[0].endpoints[0].steps[0].step_operation.cpu_time",
            "/api",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["endpoints"][0].update(
                steps="parse"
            ),
            "topology_graph.nodes.servers[0].endpoints[0].steps",
            "/api",
        ),
        (
            lambda d: d["events"][0]["start"].update(t_start="noon"),
            "events[0].start.t_start",
            "down-1",
        ),
        (lambda d: d.update(seed="lucky"), "seed", ""),
        (
            lambda d: d["sim_settings"].update(enabled_sample_metrics=["cpu_temperature"]),
            "sim_settings.enabled_sample_metrics[0]",
            "ready_queue_len",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["load_balancer"].update(algorithms="fastest"),
            "topology_graph.nodes.load_balancer.algorithms",
            "lb",
        ),
        (
            lambda d: d["topology_graph"]["edges"][0]["latency"].update(distribution="pareto"),
            "topology_graph.edges[0].latency.distribution",
            "gen-client",
        ),
    ],
)
def test_wrong_types_are_located(change: Any, path: str, owner: str) -> None:
    document = base_document()
    change(document)

    the_problem(document, path, owner)


@pytest.mark.parametrize("value", [True, False, "3", "1e3", [], {}])
@pytest.mark.parametrize(
    ("where", "path"),
    [
        (lambda d, v: d.update(seed=v), "seed"),
        (
            lambda d, v: d["sim_settings"].update(total_simulation_time=v),
            "sim_settings.total_simulation_time",
        ),
        (
            lambda d, v: d["topology_graph"]["nodes"]["servers"][0]["server_resources"].update(
                cpu_cores=v
            ),
            "topology_graph.nodes.servers[0].server_resources.cpu_cores",
        ),
        (
            lambda d, v: d["topology_graph"]["edges"][0].update(dropout_rate=v),
            "topology_graph.edges[0].dropout_rate",
        ),
        (lambda d, v: first_step(d)["step_operation"].update(cpu_time=v), None),
    ],
    ids=["seed", "horizon", "cores", "dropout", "step"],
)
def test_numbers_are_never_read_from_booleans_or_text(
    where: Any, path: str | None, value: Any
) -> None:
    document = base_document()
    where(document, value)

    found = problems(document)

    if path is None:  # a step amount is a number or a random variable: one problem, its path
        assert len(found) == 1
        assert found[0].path.startswith("topology_graph.nodes.servers[0].endpoints[0].steps[0]")
    else:
        assert [p.path for p in found] == [path]


def test_integers_are_numbers_and_whole_floats_are_integers() -> None:
    document = base_document()
    document["sim_settings"]["total_simulation_time"] = 60
    document["topology_graph"]["nodes"]["servers"][0]["server_resources"]["cpu_cores"] = 2.0
    document["seed"] = 7.0

    scenario = parse_scenario(document)

    assert scenario.sim_settings.total_simulation_time == 60.0
    assert scenario.topology_graph.nodes.servers[0].server_resources.cpu_cores == 2
    assert scenario.seed == 7
    assert isinstance(scenario.seed, int)
    document["seed"] = 7.5
    assert [p.path for p in problems(document)] == ["seed"]


def test_yaml_reads_exponents_as_numbers_like_json() -> None:
    document = base_document()
    json_text = json.dumps(document).replace('"cpu_time": 0.002', '"cpu_time": 2e-3')
    yaml_text = yaml.safe_dump(document).replace("cpu_time: 0.002", "cpu_time: 2e-3")
    assert "2e-3" in json_text
    assert "2e-3" in yaml_text

    from_json = parse_scenario_text(json_text, "json")
    from_yaml = parse_scenario_text(yaml_text)

    assert from_json == from_yaml
    step = from_yaml.topology_graph.nodes.servers[0].endpoints[0].steps[0]
    assert step.value == 0.002


def test_missing_required_fields() -> None:
    document = base_document()
    del document["rqs_input"]["avg_active_users"]
    del document["topology_graph"]["edges"][1]["latency"]

    found = {p.path: p.message for p in problems(document)}

    assert set(found) == {"rqs_input.avg_active_users", "topology_graph.edges[1].latency"}
    assert "gen" in found["rqs_input.avg_active_users"]
    assert "client-lb" in found["topology_graph.edges[1].latency"]


def test_every_problem_is_reported_at_once() -> None:
    document = base_document()
    document["topology_graph"]["edges"][0]["latency"]["mean"] = -1
    document["topology_graph"]["nodes"]["servers"][1]["server_resources"]["cpu_cores"] = 0
    document["sim_settings"]["sample_period_s"] = 5

    assert {p.path for p in problems(document)} == {
        "topology_graph.edges[0].latency.mean",
        "topology_graph.nodes.servers[1].server_resources.cpu_cores",
        "sim_settings.sample_period_s",
    }


# Times and amounts: negative and zero.


@pytest.mark.parametrize("value", [0, -0.5])
def test_step_durations_must_be_positive(value: float) -> None:
    document = base_document()
    first_step(document, 1)["step_operation"] = {"cpu_time": value}

    problem = the_problem(
        document,
        "topology_graph.nodes.servers[1].endpoints[0].steps[0].step_operation.cpu_time",
        "/api",
    )
    assert "greater than 0" in problem.message


@pytest.mark.parametrize("mean", [0, -0.01])
def test_random_step_durations_must_have_a_positive_mean(mean: float) -> None:
    document = base_document()
    io_step = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][2]
    io_step["step_operation"] = {"io_waiting_time": {"mean": mean, "distribution": "exponential"}}

    found = problems(document)

    assert len(found) == 1
    assert found[0].path.startswith("topology_graph.nodes.servers[0].endpoints[0].steps[2]")
    assert "/api" in found[0].message


@pytest.mark.parametrize(
    ("mean", "path"),
    [(0, "topology_graph.edges[4].latency"), (-1, "topology_graph.edges[4].latency.mean")],
)
def test_edge_latency_must_be_positive(mean: float, path: str) -> None:
    document = base_document()
    document["topology_graph"]["edges"][4]["latency"]["mean"] = mean

    the_problem(document, path, "srv-1-client")


@pytest.mark.parametrize(
    ("change", "path", "owner"),
    [
        (
            lambda d: d["sim_settings"].update(total_simulation_time=0),
            "sim_settings.total_simulation_time",
            "",
        ),
        (
            lambda d: d["sim_settings"].update(total_simulation_time=-60),
            "sim_settings.total_simulation_time",
            "",
        ),
        (
            lambda d: d["sim_settings"].update(total_simulation_time=float("inf")),
            "sim_settings.total_simulation_time",
            "finite",
        ),
        (lambda d: d["sim_settings"].update(sample_period_s=0), "sim_settings.sample_period_s", ""),
        (
            lambda d: d["rqs_input"].update(user_sampling_window=0),
            "rqs_input.user_sampling_window",
            "gen",
        ),
        (
            lambda d: d["rqs_input"]["avg_request_per_minute_per_user"].update(mean=0),
            "rqs_input.avg_request_per_minute_per_user",
            "gen",
        ),
        (
            lambda d: d["rqs_input"]["avg_active_users"].update(mean=-5),
            "rqs_input.avg_active_users.mean",
            "gen",
        ),
        (lambda d: d["events"][0]["start"].update(t_start=-1), "events[0].start.t_start", "down-1"),
        (lambda d: d["events"][0]["end"].update(t_end=0), "events[0].end.t_end", "down-1"),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["server_resources"].update(
                cpu_cores=0
            ),
            "topology_graph.nodes.servers[0].server_resources.cpu_cores",
            "srv-1",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["server_resources"].update(
                ram_mb=128
            ),
            "topology_graph.nodes.servers[0].server_resources.ram_mb",
            "256",
        ),
        (
            lambda d: d["topology_graph"]["edges"][1].update(dropout_rate=-0.1),
            "topology_graph.edges[1].dropout_rate",
            "client-lb",
        ),
        (
            lambda d: d["topology_graph"]["edges"][1].update(dropout_rate=1.5),
            "topology_graph.edges[1].dropout_rate",
            "client-lb",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["endpoints"][0].update(
                probability=0
            ),
            "topology_graph.nodes.servers[0].endpoints[0].probability",
            "/api",
        ),
        (lambda d: d.update(seed=-1), "seed", ""),
        (
            lambda d: d["topology_graph"]["edges"][0]["latency"].update(variance=-1),
            "topology_graph.edges[0].latency.variance",
            "gen-client",
        ),
    ],
)
def test_bounds(change: Any, path: str, owner: str) -> None:
    document = base_document()
    change(document)

    the_problem(document, path, owner)


def test_spikes_must_add_time() -> None:
    document = base_document()
    document["events"].append(
        {
            "event_id": "slow",
            "target_id": "lb-srv-1",
            "start": {"kind": "network_spike_start", "t_start": 1, "spike_s": 0},
            "end": {"kind": "network_spike_end", "t_end": 3},
        }
    )

    the_problem(document, "events[1].start.spike_s", "slow")


# Steps whose operation does not fit their kind.


@pytest.mark.parametrize(
    ("kind", "operation", "expected"),
    [
        ("initial_parsing", {"io_waiting_time": 0.1}, "cpu_time"),
        ("cpu_bound_operation", {"necessary_ram": 64}, "cpu_time"),
        ("io_db", {"cpu_time": 0.1}, "io_waiting_time"),
        ("io_cache", {"necessary_ram": 64}, "io_waiting_time"),
        ("ram", {"cpu_time": 0.1}, "necessary_ram"),
        ("initial_parsing", {"cpu_time": 0.1, "io_waiting_time": 0.1}, "cpu_time"),
        ("io_llm", {}, "io_waiting_time"),
    ],
)
def test_operation_must_fit_the_kind(kind: str, operation: dict[str, float], expected: str) -> None:
    document = base_document()
    first_step(document, 1).update(kind=kind, step_operation=operation)

    problem = the_problem(
        document, "topology_graph.nodes.servers[1].endpoints[0].steps[0]", "/api", kind
    )
    assert f"needs exactly the operation '{expected}'" in problem.message


def test_unknown_step_kind_and_operation() -> None:
    document = base_document()
    first_step(document)["kind"] = "gpu_kernel"
    document["topology_graph"]["nodes"]["servers"][1]["endpoints"][0]["steps"][1][
        "step_operation"
    ] = {"ram_mb": 64}

    found = {p.path: p.message for p in problems(document)}

    kind = found["topology_graph.nodes.servers[0].endpoints[0].steps[0].kind"]
    assert "initial_parsing" in kind
    assert "io_cache" in kind
    assert "ram" in kind
    assert "/api" in kind
    operation = found["topology_graph.nodes.servers[1].endpoints[0].steps[1].step_operation.ram_mb"]
    assert "necessary_ram" in operation


FIRST_STEP = "topology_graph.nodes.servers[0].endpoints[0].steps[0]"


CPU = {"kind": "initial_parsing", "step_operation": {"cpu_time": 0.001}}
IO = {"kind": "io_wait", "step_operation": {"io_waiting_time": 0.01}}


@pytest.mark.parametrize(
    ("step", "field", "words"),
    [
        ({**IO, "kind": "io_db", "timeout_s": 1}, "timeout_s", "only a call step has timeout_s"),
        (
            {"kind": "ram", "step_operation": {"necessary_ram": 1}, "pool": "db"},
            "pool",
            "only an I/O or call step has pool, not 'ram'",
        ),
        ({**CPU, "hit": [CPU]}, "hit", "only a cache step has hit, not 'initial_parsing'"),
        ({**IO, "retry": {"max_attempts": 2}}, "retry", "only a call step has retry"),
        ({**IO, "step_operations": {}}, "step_operations", "Extra inputs are not permitted"),
    ],
)
def test_a_field_of_another_kind_is_refused_at_its_path(
    step: dict[str, Any], field: str, words: str
) -> None:
    document = base_document()
    document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][0] = step

    problem = the_problem(document, f"{FIRST_STEP}.{field}", "/api")
    assert words in problem.message


@pytest.mark.parametrize(
    ("step", "path", "words"),
    [
        ({"step_operation": {"cpu_time": 0.1}}, f"{FIRST_STEP}.kind", "Field required"),
        ({"kind": ["cpu"]}, f"{FIRST_STEP}.kind", "kind must be one of"),
        ("initial_parsing", FIRST_STEP, "valid dictionary"),
    ],
)
def test_a_step_without_a_known_kind_is_refused(step: Any, path: str, words: str) -> None:
    document = base_document()
    document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][0] = step

    assert words in the_problem(document, path).message


def test_fields_of_other_kinds_left_empty_are_read_as_left_out() -> None:
    """Scenarios stored by earlier versions wrote every field of every step, empty where
    the kind has none; they still load, and mean the same."""
    every_field_empty = {
        "target": None,
        "targets": None,
        "wait_for": None,
        "hit_ratio": None,
        "hit": [],
        "miss": [],
        "pool": None,
        "timeout_s": None,
        "on_timeout": None,
        "retry": None,
        "circuit_breaker": None,
        "step_operation": {},
    }
    document = base_document()
    expected = parse_scenario(document)
    for srv in document["topology_graph"]["nodes"]["servers"]:
        for step in srv["endpoints"][0]["steps"]:
            step.update({k: v for k, v in every_field_empty.items() if k not in step})

    assert parse_scenario(document) == expected
    assert parse_scenario(expected.model_dump(mode="json")) == expected


def test_the_json_schema_gives_each_kind_its_own_fields() -> None:
    definitions = Scenario.model_json_schema()["$defs"]
    steps = definitions["Endpoint"]["properties"]["steps"]["items"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in steps["oneOf"]] == [
        model.__name__ for model in STEP_MODELS
    ]
    assert set(definitions["CpuStep"]["properties"]) == {"kind", "step_operation"}
    assert "timeout_s" in definitions["CallStep"]["properties"]
    assert "hit_ratio" in definitions["CacheStep"]["required"]


def test_ram_cannot_be_random() -> None:
    document = base_document()
    ram_step = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"][1]
    ram_step["step_operation"] = {"necessary_ram": {"mean": 64, "distribution": "exponential"}}

    problem = the_problem(document, "topology_graph.nodes.servers[0].endpoints[0].steps[1]", "/api")
    assert "necessary_ram must be a number" in problem.message


# Events that do not hang together on their own.


def test_event_end_must_match_its_start() -> None:
    document = base_document()
    document["events"][0]["end"]["kind"] = "network_spike_end"

    problem = the_problem(document, "events[0]", "down-1")
    assert "must end with 'server_up'" in problem.message


def test_event_must_end_after_it_starts() -> None:
    document = base_document()
    document["events"][0]["end"]["t_end"] = 10

    problem = the_problem(document, "events[0]", "down-1")
    assert "t_start must be before t_end" in problem.message


def test_spike_needs_its_amount_and_outage_takes_none() -> None:
    spike = base_document()
    spike["events"][0] = {
        "event_id": "slow",
        "target_id": "lb-srv-1",
        "start": {"kind": "network_spike_start", "t_start": 1},
        "end": {"kind": "network_spike_end", "t_end": 3},
    }
    outage = base_document()
    outage["events"][0]["start"]["spike_s"] = 0.5

    assert "needs spike_s" in the_problem(spike, "events[0]", "slow").message
    assert "only applies" in the_problem(outage, "events[0]", "down-1").message


# Distributions allowed where.


@pytest.mark.parametrize("distribution", ["exponential", "log_normal", "uniform"])
def test_user_count_distributions(distribution: str) -> None:
    document = base_document()
    document["rqs_input"]["avg_active_users"]["distribution"] = distribution

    problem = the_problem(document, "rqs_input.avg_active_users", "gen")
    assert "deterministic, normal, poisson" in problem.message


def test_request_rate_must_be_poisson() -> None:
    document = base_document()
    document["rqs_input"]["avg_request_per_minute_per_user"]["distribution"] = "normal"

    the_problem(document, "rqs_input.avg_request_per_minute_per_user", "poisson")


def test_load_balancer_lists_each_server_once() -> None:
    document = base_document()
    document["topology_graph"]["nodes"]["load_balancer"]["server_covered"] = ["srv-1", "srv-1"]

    the_problem(document, "topology_graph.nodes.load_balancer.server_covered", "srv-1", "lb")


@pytest.mark.parametrize(
    ("section", "path"),
    [
        (("topology_graph", "nodes", "servers"), "topology_graph.nodes.servers"),
        (("topology_graph", "edges"), "topology_graph.edges"),
        (
            ("topology_graph", "nodes", "servers", 0, "endpoints"),
            "topology_graph.nodes.servers[0].endpoints",
        ),
    ],
)
def test_lists_that_cannot_be_empty(section: tuple[str | int, ...], path: str) -> None:
    document = base_document()
    target: Any = document
    for part in section[:-1]:
        target = target[part]
    target[section[-1]] = []

    assert path in [p.path for p in problems(document)]


# Defaults: AsyncFlow's wherever it has one.


def test_defaults() -> None:
    document = base_document()
    del document["sim_settings"]
    del document["events"]
    del document["topology_graph"]["nodes"]["servers"][0]["server_resources"]
    del document["topology_graph"]["nodes"]["load_balancer"]["server_covered"][1]
    del document["topology_graph"]["edges"][3]
    del document["topology_graph"]["edges"][4]
    del document["topology_graph"]["nodes"]["servers"][1]

    scenario = parse_scenario(document)

    settings = scenario.sim_settings
    assert settings.total_simulation_time == 3600
    assert settings.sample_period_s == 0.01
    assert [m.value for m in settings.enabled_sample_metrics] == [
        "ready_queue_len",
        "event_loop_io_sleep",
        "ram_in_use",
        "edge_concurrent_connection",
        "pool_in_use",
        "pool_waiting",
    ]
    assert [m.value for m in settings.enabled_event_metrics] == ["rqs_clock"]
    assert scenario.rqs_input.user_sampling_window == 60
    assert scenario.rqs_input.avg_active_users.distribution is Distribution.POISSON
    resources = scenario.topology_graph.nodes.servers[0].server_resources
    assert (resources.cpu_cores, resources.ram_mb, resources.db_connection_pool) == (1, 1024, None)
    assert scenario.topology_graph.edges[0].dropout_rate == 0.01
    assert scenario.topology_graph.edges[0].edge_type == "network_connection"
    lb = scenario.topology_graph.nodes.load_balancer
    assert lb is not None
    assert lb.algorithms == "round_robin"
    assert scenario.topology_graph.nodes.servers[0].endpoints[0].probability is None
    assert scenario.events is None
    assert scenario.seed is None


@pytest.mark.parametrize(
    ("distribution", "variance"), [("normal", 4.0), ("log_normal", 4.0), ("uniform", None)]
)
def test_variance_defaults_to_the_mean_for_normal_and_log_normal(
    distribution: str, variance: float | None
) -> None:
    assert RVConfig(mean=4, distribution=Distribution(distribution)).variance == variance


def test_random_durations_and_deterministic_users_are_accepted() -> None:
    document = base_document()
    document["rqs_input"]["avg_active_users"] = {"mean": 7, "distribution": "deterministic"}
    first_step(document)["step_operation"] = {
        "cpu_time": {"mean": 0.004, "distribution": "exponential"}
    }
    document["seed"] = 99

    scenario = parse_scenario(document)

    step = scenario.topology_graph.nodes.servers[0].endpoints[0].steps[0]
    assert step.value == RVConfig(mean=0.004, distribution=Distribution.EXPONENTIAL)
    assert scenario.rqs_input.avg_active_users.distribution is Distribution.DETERMINISTIC
    assert scenario.seed == 99


def test_type_literals_are_accepted_and_checked() -> None:
    document = base_document()
    document["rqs_input"]["type"] = "generator"
    document["topology_graph"]["nodes"]["client"]["type"] = "client"
    document["topology_graph"]["edges"][0]["edge_type"] = "network_connection"
    parse_scenario(document)

    document["topology_graph"]["nodes"]["servers"][0]["type"] = "database"
    the_problem(document, "topology_graph.nodes.servers[0].type", "srv-1")


def test_scenarios_are_immutable() -> None:
    scenario = parse_scenario(base_document())

    with pytest.raises(ValueError, match="frozen"):
        scenario.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "path", "owner"),
    [
        (
            lambda d: first_step(d).update(step_operation={"cpu_time": float("inf")}),
            "topology_graph.nodes.servers[0].endpoints[0].steps[0].step_operation.cpu_time",
            "/api",
        ),
        (
            lambda d: first_step(d).update(step_operation={"cpu_time": float("nan")}),
            "topology_graph.nodes.servers[0].endpoints[0].steps[0].step_operation.cpu_time",
            "/api",
        ),
        (
            lambda d: d["topology_graph"]["nodes"]["servers"][0]["endpoints"][0].update(
                probability=float("inf")
            ),
            "topology_graph.nodes.servers[0].endpoints[0].probability",
            "/api",
        ),
        (
            lambda d: d["events"].append(
                {
                    "event_id": "forever",
                    "target_id": "lb-srv-1",
                    "start": {"kind": "network_spike_start", "t_start": 1, "spike_s": float("inf")},
                    "end": {"kind": "network_spike_end", "t_end": 3},
                }
            ),
            "events[1].start.spike_s",
            "forever",
        ),
        (
            lambda d: d["topology_graph"]["edges"][0]["latency"].update(mean=float("inf")),
            "topology_graph.edges[0].latency.mean",
            "gen-client",
        ),
    ],
)
def test_infinite_and_nan_amounts_are_rejected(change: Any, path: str, owner: str) -> None:
    document = base_document()
    change(document)

    problem = the_problem(document, path, owner)
    assert "finite" in problem.message


# The language reference matches the models.

LANGUAGE_DOC = Path(__file__).parents[2] / "docs" / "scenario-language.md"


def model_fields(model: type[BaseModel]) -> dict[str, set[str]]:
    """Every field name of `model` and of the models nested in it, by model."""
    found: dict[str, set[str]] = {}
    pending: list[Any] = [model]
    while pending:
        current = pending.pop()
        if isinstance(current, type) and issubclass(current, BaseModel):
            if current.__name__ in found:
                continue
            found[current.__name__] = set(current.model_fields)
            pending += [field.annotation for field in current.model_fields.values()]
        else:
            pending += typing.get_args(current)
    return found


def test_every_field_of_every_model_is_documented() -> None:
    text = LANGUAGE_DOC.read_text(encoding="utf-8")
    fields = model_fields(Scenario)

    steps = {model.__name__ for model in STEP_MODELS}
    assert {"Scenario", "RqsGenerator", "Server", "Edge", "EventStart", *steps} <= set(fields)
    missing = {
        f"{model}.{name}"
        for model, names in fields.items()
        for name in names
        if f"`{name}`" not in text
    }
    assert not missing, f"fields missing from {LANGUAGE_DOC.name}: {sorted(missing)}"


@pytest.mark.parametrize(
    "vocabulary",
    [
        Distribution,
        CpuStepKind,
        IoStepKind,
        RamStepKind,
        CallStepKind,
        CacheStepKind,
        StepOperation,
        LoadBalancerAlgorithm,
        EventKind,
        SampledMetric,
        EventMetric,
    ],
    ids=lambda enum: enum.__name__,
)
def test_every_word_of_the_vocabulary_is_documented(vocabulary: type[StrEnum]) -> None:
    text = LANGUAGE_DOC.read_text(encoding="utf-8")

    missing = [member.value for member in vocabulary if f"`{member.value}`" not in text]
    assert not missing, f"{vocabulary.__name__} values missing from the doc: {missing}"


def test_documented_defaults_are_the_models_defaults() -> None:
    text = LANGUAGE_DOC.read_text(encoding="utf-8")
    defaults = parse_scenario(base_document())
    resources = ServerResources()
    documented = {
        "total_simulation_time": SimulationSettings().total_simulation_time,
        "sample_period_s": SimulationSettings().sample_period_s,
        "user_sampling_window": defaults.rqs_input.user_sampling_window,
        "cpu_cores": resources.cpu_cores,
        "ram_mb": resources.ram_mb,
        "dropout_rate": defaults.topology_graph.edges[0].dropout_rate,
    }

    for field, value in documented.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{field}` |"))
        assert f"`{value:g}`" in row, (field, value, row)
