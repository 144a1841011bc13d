"""Arrival-rate schedules: their fields, their checks, their files and their costs."""

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncflow_backend.api.errors import ScenarioRejected
from asyncflow_backend.api.scenario_input import JSON, decode_scenario
from asyncflow_backend.builder import ScenarioBuilder
from asyncflow_backend.cli import INVALID_INPUT, app
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, load_scenario_file, parse_scenario
from asyncflow_backend.schemas.arrival_rate import DailyRate, RampRate, StepRate
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits, scheduled_events
from asyncflow_backend.schemas.warnings import find_warnings
from support.scenarios import server_to_feed


def base(horizon: float = 100) -> ScenarioBuilder:
    return server_to_feed(cpu_mean_s=0.001, horizon_s=horizon)


def document(schedule: dict[str, Any], horizon: float = 100) -> dict[str, Any]:
    doc = base(horizon).to_dict()
    doc["rqs_input"] = {"id": "gen", "arrival_rate": schedule}
    return doc


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(doc)
    return [str(p) for p in caught.value.problems]


def points(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"at_s": t, "rate_per_s": r} for t, r in pairs]


def test_steps_ramps_and_sines_integrate_exactly() -> None:
    steps = StepRate(shape="steps", points=points((0, 2), (10, 5)))  # type: ignore[arg-type]
    assert steps.integral(30) == pytest.approx(2 * 10 + 5 * 20)
    assert steps.peak(5) == 2
    assert steps.peak(30) == 5
    ramp = RampRate(shape="ramp", points=points((0, 0), (10, 10)))  # type: ignore[arg-type]
    assert ramp.integral(10) == pytest.approx(50)
    assert ramp.integral(5) == pytest.approx(12.5)
    assert ramp.integral(20) == pytest.approx(150)
    assert ramp.rate_at(2.5) == pytest.approx(2.5)
    daily = DailyRate(shape="daily", period_s=100, peak_rate_per_s=10, trough_rate_per_s=2)
    assert daily.integral(100) == pytest.approx(6 * 100)
    assert daily.integral(50) == pytest.approx(6 * 50 - 4 * 100 / (2 * math.pi) * 0)
    assert daily.rate_at(50) == pytest.approx(10)
    assert daily.rate_at(0) == pytest.approx(2)
    assert daily.peak(20) == pytest.approx(daily.rate_at(20))
    assert daily.peak(200) == 10


def test_thinning_pieces_bound_the_rate_everywhere() -> None:
    ramp = RampRate(shape="ramp", points=points((0, 0), (10, 10), (20, 3)))  # type: ignore[arg-type]
    daily = DailyRate(shape="daily", period_s=100, peak_rate_per_s=10, trough_rate_per_s=2)
    for schedule in (ramp, daily):
        pieces = schedule.pieces(250)
        assert pieces[0][0] == 0
        assert pieces[-1][1] == 250
        for (_, end, _, _), (start, _, _, _) in itertools.pairwise(pieces):
            assert end == start
        for a, b, bound, _ in pieces:
            for t in (a, (a + b) / 2, b - 1e-9):
                assert schedule.rate_at(t) <= bound + 1e-9


@pytest.mark.parametrize(
    ("schedule", "path", "words"),
    [
        (
            {"shape": "steps", "points": points((0, 1), (20, 2), (10, 3))},
            "rqs_input.arrival_rate.points",
            "point 2 is at 10 s, not after point 1 at 20 s",
        ),
        (
            {"shape": "ramp", "points": points((0, 1), (10, -2))},
            "rqs_input.arrival_rate.points[1].rate_per_s",
            "greater than or equal to 0",
        ),
        (
            {"shape": "steps", "points": points((5, 1))},
            "rqs_input.arrival_rate.points",
            "the first point must be at 0 s",
        ),
        (
            {"shape": "ramp", "points": points((0, 0), (10, 0))},
            "rqs_input.arrival_rate.points",
            "no request would ever be sent",
        ),
        (
            {"shape": "daily", "peak_rate_per_s": 1, "trough_rate_per_s": 3},
            "rqs_input.arrival_rate",
            "must not exceed peak_rate_per_s",
        ),
        (
            {"shape": "weekly", "points": points((0, 1))},
            "rqs_input.arrival_rate",
            "`shape` must be one of steps, ramp, trace or daily",
        ),
        (
            {"shape": "trace", "file": "rates.csv"},
            "rqs_input.arrival_rate",
            "send the trace inline as `points`",
        ),
    ],
)
def test_bad_schedules_are_refused_at_their_path(
    schedule: dict[str, Any], path: str, words: str
) -> None:
    found = problems_of(document(schedule))
    assert any(p.startswith(f"{path}:") and words in p for p in found), found


def test_a_workload_is_exactly_one_model() -> None:
    doc = document({"shape": "steps", "points": points((0, 1))})
    doc["rqs_input"]["avg_active_users"] = {"mean": 3}
    (problem,) = problems_of(doc)
    assert problem.startswith("rqs_input: give exactly one workload")
    assert "found `avg_active_users`, `avg_request_per_minute_per_user` and `arrival_rate`" in (
        problem
    )
    doc = document({"shape": "steps", "points": points((0, 1))})
    doc["rqs_input"]["user_sampling_window"] = 10
    (warning,) = find_warnings(parse_scenario(doc))
    assert warning.path == "rqs_input.user_sampling_window"
    assert "applies to `avg_active_users` only" in warning.message


def test_warnings_name_points_past_the_horizon_and_a_short_trace() -> None:
    late = parse_scenario(document({"shape": "steps", "points": points((0, 1), (150, 3))}))
    (warning,) = find_warnings(late)
    assert warning.path == "rqs_input.arrival_rate.points"
    assert "1 point(s) at or after the horizon (100 s) are never reached" in warning.message
    short = parse_scenario(document({"shape": "trace", "points": points((0, 1), (30, 3))}))
    (warning,) = find_warnings(short)
    assert "the trace ends at 30 s" in warning.message
    assert not find_warnings(
        parse_scenario(document({"shape": "ramp", "points": points((0, 1), (30, 3))}))
    )


def test_limits_read_the_integral_and_the_peak() -> None:
    scenario = parse_scenario(
        document({"shape": "ramp", "points": points((0, 0), (100, 1000))}, horizon=100)
    )
    assert scenario.expected_requests == pytest.approx(50_000)
    assert scenario.peak_arrival_rate == pytest.approx(1000)
    (problem,) = check_limits(scenario, ScenarioLimits(max_expected_requests=40_000))
    assert problem.path == "rqs_input.arrival_rate"
    assert "50000 expected requests (the integral of the arrival rate over 100 s" in problem.message
    assert not check_limits(scenario, ScenarioLimits(max_expected_requests=60_000))
    events = scheduled_events(scenario)
    assert events.requests == pytest.approx(100 * 1000)
    assert events.generator_windows == 8


def test_a_csv_trace_beside_the_file_is_read_relative_to_it(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    (folder / "traces").mkdir(parents=True)
    (folder / "traces" / "rates.csv").write_text(
        "at_s,rate_per_s\n0,5\n# a comment\n50,20\n", encoding="utf-8"
    )
    doc = document({"shape": "trace", "file": "traces/rates.csv", "interpolation": "steps"})
    path = folder / "traced.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    scenario = load_scenario_file(path)
    schedule = scenario.rqs_input.arrival_rate
    assert isinstance(schedule, StepRate | RampRate) or schedule is not None
    assert scenario.expected_requests == pytest.approx(5 * 50 + 20 * 50)
    dumped = scenario.model_dump(mode="json")
    assert dumped["rqs_input"]["arrival_rate"]["file"] is None
    assert parse_scenario(dumped) == scenario

    out = tmp_path / "results.json"
    result = CliRunner().invoke(app, ["run", str(path), "--seed", "3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    generated = json.loads(out.read_text())["requests"]["generated"]
    assert abs(generated - 1250) < 4 * math.sqrt(1250)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0,5\n10,x\n", "row 2 is not two numbers"),
        ("0,5,7\n", "row 1 has 3 columns"),
        ("at_s,rate_per_s\n", "it holds no point"),
        ("0,5\n10,inf\n", "not finite"),
    ],
)
def test_a_bad_trace_file_is_refused_naming_the_row(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "rates.csv").write_text(text, encoding="utf-8")
    path = tmp_path / "traced.json"
    path.write_text(json.dumps(document({"shape": "trace", "file": "rates.csv"})))
    with pytest.raises(ScenarioValidationError) as caught:
        load_scenario_file(path)
    (problem,) = caught.value.problems
    assert problem.path == "rqs_input.arrival_rate.file"
    assert words in problem.message
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == INVALID_INPUT
    assert "rqs_input.arrival_rate.file" in result.output


def test_a_missing_trace_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "traced.json"
    path.write_text(json.dumps(document({"shape": "trace", "file": "nowhere.csv"})))
    with pytest.raises(ScenarioValidationError, match=r"trace 'nowhere\.csv': cannot read it"):
        load_scenario_file(path)


def test_the_api_takes_an_inline_trace_and_refuses_a_file() -> None:
    inline = document({"shape": "trace", "points": points((0, 5), (60, 10), (100, 10))})
    scenario = decode_scenario(json.dumps(inline).encode(), JSON, ScenarioLimits(), 100_000)
    assert scenario.expected_requests == pytest.approx(5 * 60 + 2.5 * 60 + 400)
    with pytest.raises(ScenarioRejected) as caught:
        decode_scenario(
            json.dumps(document({"shape": "trace", "file": "rates.csv"})).encode(),
            JSON,
            ScenarioLimits(),
            100_000,
        )
    ((problem, kind),) = caught.value.problems
    assert problem.path == "rqs_input.arrival_rate"
    assert "through the API" in problem.message or "(the API)" in problem.message
    assert kind == "invalid_scenario"


def test_the_builder_writes_every_shape() -> None:
    ramp = base().arrival_rate("gen", "ramp", [(0, 1), (50, 4)]).build()
    assert ramp.rqs_input.arrival_rate == RampRate(
        shape="ramp",
        points=points((0, 1), (50, 4)),  # type: ignore[arg-type]
    )
    trace = base().arrival_rate("gen", "trace", [(0, 1)], interpolation="steps").build()
    assert trace.rqs_input.arrival_rate is not None
    daily = base().daily_rate("gen", peak=8, trough=2, period_s=50, peak_at_s=5).build()
    assert daily.rqs_input.arrival_rate == DailyRate(
        shape="daily", period_s=50, peak_rate_per_s=8, trough_rate_per_s=2, peak_at_s=5
    )
    results = run_scenario(daily, seed=4)
    assert abs(results.requests.generated - 500) < 4 * math.sqrt(500)
