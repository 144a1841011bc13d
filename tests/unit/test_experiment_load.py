"""What a capacity search's load factor multiplies, for every workload model and class."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.experiments import (
    ExperimentSpec,
    ExperimentValidationError,
    load_experiment_file,
    prepare,
    run_experiment,
)
from asyncflow_backend.experiments.load import LoadError, load_overrides
from asyncflow_backend.experiments.paths import with_overrides
from asyncflow_backend.schemas import parse_scenario


def with_server(builder: ScenarioBuilder, *generators: str) -> dict[str, Any]:
    builder = builder.client("client").server("srv").endpoint("/api").cpu(exponential(0.01))
    for generator in generators:
        builder = builder.edge(generator, "client", latency=exponential(0.001))
    return (
        builder.chain("client", "srv", "client", latency=exponential(0.001))
        .settings(horizon=20, sample_period=0.1)
        .to_dict()
    )


def test_users_per_window_scale_the_rate_per_user_or_the_users() -> None:
    scenario = with_server(ScenarioBuilder().generator("gen", users=30, rpm=60), "gen")

    assert load_overrides(scenario, "arrival_rate", 2.0) == {
        "rqs_input.avg_request_per_minute_per_user.mean": 120
    }
    assert load_overrides(scenario, "users", 0.5) == {"rqs_input.avg_active_users.mean": 15}


def test_every_rate_of_a_schedule_and_a_daily_curve_is_scaled() -> None:
    steps = with_server(
        ScenarioBuilder()
        .arrival_rate("gen", "steps", [(0, 10), (10, 40)])
        .daily_rate("night", peak=8, trough=2, period_s=20),
        "gen",
        "night",
    )

    scaled = load_overrides(steps, "arrival_rate", 1.5)

    assert scaled["rqs_input.arrival_rate"]["points"] == [
        {"at_s": 0, "rate_per_s": 15},
        {"at_s": 10, "rate_per_s": 60},
    ]
    night = scaled["workload_classes.0.arrival_rate"]
    assert (night["peak_rate_per_s"], night["trough_rate_per_s"]) == (12, 3)
    assert steps["rqs_input"]["arrival_rate"]["points"][1]["rate_per_s"] == 40  # untouched
    parse_scenario(with_overrides(steps, scaled))
    with pytest.raises(LoadError, match="arrival-rate schedule: search on load arrival_rate"):
        load_overrides(steps, "users", 2.0)


def test_a_closed_population_scales_to_whole_users_never_below_one() -> None:
    fleet = with_server(ScenarioBuilder().closed_users("fleet", 10, think_time=1.0), "fleet")
    schedule = with_server(
        ScenarioBuilder().closed_users("fleet", [(0, 4), (10, 0), (15, 1)], think_time=1.0),
        "fleet",
    )

    assert load_overrides(fleet, "users", 1.26) == {"rqs_input.users": 13}
    assert load_overrides(fleet, "users", 0.01) == {"rqs_input.users": 1}
    points = load_overrides(schedule, "users", 0.3)["rqs_input.users"]["points"]
    assert [p["users"] for p in points] == [1, 0, 1]
    with pytest.raises(LoadError, match="closed population"):
        load_overrides(fleet, "arrival_rate", 2.0)


def test_a_search_on_a_load_the_workload_lacks_is_refused_at_search_load() -> None:
    fleet = with_server(ScenarioBuilder().closed_users("fleet", 10, think_time=1.0), "fleet")
    spec = ExperimentSpec.model_validate(
        {
            "scenario": fleet,
            "search": {
                "load": "arrival_rate",
                "objective": {"metric": "latency.p95", "at_most": 1},
            },
        }
    )
    with pytest.raises(ExperimentValidationError) as refused:
        prepare(spec)
    assert [p.path for p in refused.value.problems] == ["search.load"]


def test_a_search_over_a_closed_fleet_finds_its_users_and_reports_them() -> None:
    # 1 user thinking 0.1 s on a 10 ms server: p95 grows with users; search on users.
    fleet = with_server(
        ScenarioBuilder().closed_users("fleet", 4, think_time=exponential(0.1)), "fleet"
    )
    spec = ExperimentSpec.model_validate(
        {
            "scenario": fleet,
            "seed": 3,
            "replications": 3,
            "search": {
                "load": "users",
                "objective": {"metric": "latency.mean", "at_most": 0.05},
                "max_factor": 16,
                "tolerance": 0.1,
            },
        }
    )
    report = run_experiment(prepare(spec)).search
    assert report is not None
    assert report.status == "found"
    assert report.path == "rqs_input.users"
    assert report.fields == ["rqs_input.users"]
    assert report.base_value == 4
    assert report.capacity_value == round(4 * report.low)


def test_an_experiment_file_reads_the_trace_its_scenario_names(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "load.csv").write_text("0,5\n10,20\n", encoding="utf-8")
    scenario = with_server(ScenarioBuilder().arrival_rate("gen", "trace", [(0, 1)]), "gen")
    scenario["rqs_input"]["arrival_rate"] = {"shape": "trace", "file": "load.csv"}
    (tmp_path / "scenarios" / "s.yml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    (tmp_path / "e.yml").write_text("scenario: scenarios/s.yml\nreplications: 2\n")

    spec = load_experiment_file(tmp_path / "e.yml")

    points = spec.scenario["rqs_input"]["arrival_rate"]["points"]
    assert [p["rate_per_s"] for p in points] == [5, 20]
    (tmp_path / "scenarios" / "load.csv").write_text("0,x\n", encoding="utf-8")
    with pytest.raises(ExperimentValidationError) as refused:
        load_experiment_file(tmp_path / "e.yml")
    assert refused.value.problems[0].path.startswith("scenario.rqs_input.arrival_rate.file")
