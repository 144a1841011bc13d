"""Numbers that validate must be numbers the engine can simulate, and no result is ever
NaN or infinite.

Each bound is checked at the field it belongs to: the problem names that path,
and its message prints numbers as a person writes them.
"""

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.samplers.variates import batch_function
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.results import NonFiniteResultError

QUICKSTART = Path(__file__).parents[2] / "example" / "quickstart.yml"
SERVER = ("topology_graph", "nodes", "servers", 0)
EDGE = ("topology_graph", "edges", 0)
STEP = (*SERVER, "endpoints", 0, "steps", 0)


def quickstart() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    return data


def set_at(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def problems_for(path: tuple[str | int, ...], value: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(set_at(quickstart(), path, value))
    return [(tuple(p.loc), p.message) for p in caught.value.problems]


HUGE_INT = 10**400
LOG_NORMAL = "log_normal"


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ((*SERVER, "server_resources", "cpu_cores"), HUGE_INT, "cpu_cores"),
        ((*SERVER, "server_resources", "cpu_cores"), 1_000_000, "cpu_cores"),
        ((*SERVER, "server_resources", "ram_mb"), HUGE_INT, "ram_mb"),
        ((*SERVER, "server_resources", "ram_mb"), 1.5e308, "ram_mb"),
        ((*SERVER, "server_resources", "db_connection_pool"), HUGE_INT, "db_connection_pool"),
        ((*SERVER, "server_resources", "connection_pools"), {"pay": HUGE_INT}, "pay"),
        (("sim_settings", "total_simulation_time"), 1e308, "total_simulation_time"),
        (("sim_settings", "total_simulation_time"), 1e9, "total_simulation_time"),
        (("rqs_input", "avg_active_users"), {"mean": 1e300}, "mean"),
        (("rqs_input", "avg_request_per_minute_per_user"), {"mean": 1e300}, "mean"),
        ((*EDGE, "latency"), {"mean": 1e300, "distribution": "exponential"}, "mean"),
        (
            (*EDGE, "latency"),
            {"mean": 0.002, "distribution": "normal", "variance": 1e300},
            "variance",
        ),
        (
            (*EDGE, "latency"),
            {"mean": 1e-9, "variance": 1e300, "distribution": LOG_NORMAL},
            "variance",
        ),
        ((*EDGE, "latency"), {"mean": 1e-320, "distribution": LOG_NORMAL}, "latency"),
        (
            (*EDGE, "latency"),
            {"mean": 1e-300, "variance": 1e-10, "distribution": LOG_NORMAL},
            "latency",
        ),
        ((*STEP, "step_operation"), {"cpu_time": 1e300}, "steps"),
        (
            (*STEP, "step_operation"),
            {"cpu_time": {"mean": 1e12, "distribution": "exponential"}},
            "mean",
        ),
        (
            (*SERVER, "endpoints", 0, "steps", 1, "step_operation"),
            {"necessary_ram": 1e300},
            "steps",
        ),
        ((*SERVER, "endpoints", 0, "probability"), 1e308, "probability"),
    ],
)
def test_numbers_the_engine_cannot_honour_are_refused_at_their_field(
    path: tuple[str | int, ...], value: Any, where: str
) -> None:
    problems = problems_for(path, value)

    assert problems, "accepted"
    loc, message = problems[0]
    assert where in loc or loc[-1] == where or where in message
    assert len(message) < 300  # no 309-digit number, no echo of a huge value


def test_a_log_normal_whose_parameters_overflow_says_so_readably() -> None:
    [(loc, message)] = problems_for(
        (*EDGE, "latency"), {"mean": 1e-320, "distribution": LOG_NORMAL}
    )

    assert loc == (*EDGE, "latency")
    assert "log_normal" in message
    assert "overflows" in message
    assert "1e-320" in message or "9.99989e-321" in message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (86400, "86400"),
        (0.002, "0.002"),
        (1e308, "1e+308"),
        (1.5e5 + 0.25, "150000"),
        (1e-170, "1e-170"),
    ],
)
def test_numbers_in_messages_are_readable(value: float, text: str) -> None:
    assert readable(value) == text


@pytest.mark.parametrize(
    "spec",
    [
        {"mean": 1e-170, "distribution": LOG_NORMAL},  # was a ZeroDivisionError
        {"mean": 1e-9, "variance": 1e18, "distribution": LOG_NORMAL},
        {"mean": 1e9, "variance": 1e18, "distribution": LOG_NORMAL},
        {"mean": 5e-324, "variance": 0.0, "distribution": LOG_NORMAL},
        {"mean": 1e9, "variance": 1e18, "distribution": "normal"},
        {"mean": 1e9, "variance": 1e18, "distribution": "uniform"},
        {"mean": 1e9, "distribution": "poisson"},
        {"mean": 1e9, "distribution": "exponential"},
    ],
)
def test_every_valid_random_variable_draws_finite_numbers(spec: dict[str, Any]) -> None:
    variable = RVConfig.model_validate(spec)
    batch = batch_function(variable, np.random.default_rng(1))
    draws = batch(4096) if batch is not None else np.array([variable.mean])

    assert np.isfinite(draws).all()
    assert (draws >= 0).all()


def test_the_largest_accepted_values_still_build_and_run() -> None:
    data = quickstart()
    data = set_at(data, (*SERVER, "server_resources"), {"cpu_cores": 1024, "ram_mb": 1073741824})
    data = set_at(data, ("sim_settings", "total_simulation_time"), 5)
    data = set_at(
        data, (*EDGE, "latency"), {"mean": 1e-9, "variance": 1e18, "distribution": LOG_NORMAL}
    )

    results = SimulationRunner(parse_scenario(data), seed=1).run()

    assert results.requests.generated > 0
    assert all(math.isfinite(v) for v in results.latency.histogram.edges)


def test_a_result_holding_nan_fails_the_run_with_a_reason_instead_of_being_stored() -> None:
    runner = SimulationRunner(
        parse_scenario(set_at(quickstart(), ("sim_settings", "total_simulation_time"), 5)), seed=1
    )
    # What a sampler drawing NaN delays used to leave behind: NaN latencies.
    runner.model.collector.latencies.append(float("nan"))

    with pytest.raises(NonFiniteResultError) as caught:
        runner.run()

    assert "latency" in str(caught.value)
    assert "not finite" in str(caught.value)
