"""Experiments: the document, paths, seeds, warm-up, the plan (precision, sweep, search), CLI."""

import itertools
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from asyncflow_backend.cli import INVALID_INPUT, app
from asyncflow_backend.experiments import (
    ExperimentSpec,
    ExperimentValidationError,
    Point,
    Replication,
    load_experiment_file,
    parse_experiment,
    plan,
    prepare,
    replication_seed,
    run_experiment,
    run_replication,
)
from asyncflow_backend.experiments.paths import PathError, read_path, with_overrides
from asyncflow_backend.experiments.prepare import most_replications
from asyncflow_backend.experiments.report import ExperimentReport
from asyncflow_backend.experiments.spec import MIN_FACTOR
from asyncflow_backend.experiments.summary_table import print_report
from support.scenarios import parsing_server

EXAMPLES = Path(__file__).parents[2] / "example" / "experiments"


def spec(**fields: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {"scenario": parsing_server(users=30, horizon_s=10.0), "seed": 1, **fields}
    )


def problems_of(call: Callable[[], object]) -> list[str]:
    with pytest.raises(ExperimentValidationError) as caught:
        call()
    return [str(p) for p in caught.value.problems]


# Seeds and paths.


def test_replication_seed_is_child_i_of_seed_sequence_spawn() -> None:
    children = np.random.SeedSequence(42).spawn(5)
    for i, child in enumerate(children):
        expected = int(child.generate_state(1, dtype=np.uint64)[0]) % 2**63
        assert replication_seed(42, i) == expected
    assert len({replication_seed(42, i) for i in range(100)}) == 100
    with pytest.raises(ValueError, match="negative"):
        replication_seed(-1, 0)


def test_paths_reach_fields_by_key_index_and_id() -> None:
    data = parsing_server(users=30, horizon_s=10.0)
    assert read_path(data, "topology_graph.nodes.servers.srv.server_resources.cpu_cores") == 1
    assert read_path(data, "topology_graph.edges.0.source") == "gen"
    changed = with_overrides(
        data,
        {"topology_graph.nodes.servers.srv.server_resources.cpu_cores": 3, "seed": None}
        if "seed" in data
        else {"topology_graph.nodes.servers.srv.server_resources.cpu_cores": 3},
    )
    assert changed["topology_graph"]["nodes"]["servers"][0]["server_resources"]["cpu_cores"] == 3
    assert data["topology_graph"]["nodes"]["servers"][0]["server_resources"]["cpu_cores"] == 1


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("rqs_input.nope", "has no field 'nope'"),
        ("topology_graph.nodes.servers.srv-9.server_resources", "no element with index or id"),
        ("rqs_input.id.deeper", "is a value"),
        ("rqs_input..id", "empty segment"),
    ],
)
def test_bad_paths_say_where_they_stop(path: str, message: str) -> None:
    with pytest.raises(PathError, match=message):
        read_path(parsing_server(users=30, horizon_s=10.0), path)
    with pytest.raises(PathError):
        with_overrides(parsing_server(users=30, horizon_s=10.0), {path: 1})


# The document and what `prepare` checks.


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"replications": 1}, "replications"),
        ({"confidence": 1.2}, "confidence"),
        ({"warmup_s": -1}, "warmup_s"),
        ({"warmup_s": "mser"}, "warmup_s"),
        ({"colour": "red"}, "colour"),
        ({"sweep": [{"path": "seed"}]}, "sweep[0]"),
        (
            {"sweep": [{"path": "a", "values": [1], "range": {"start": 1, "stop": 2, "step": 1}}]},
            "sweep[0]",
        ),
        ({"sweep": [{"path": "a", "range": {"start": 0, "stop": 1e6, "step": 1}}]}, "sweep[0]"),
        (
            {"search": {"objective": {"metric": "latency.p95", "at_most": 1}, "start": 100}},
            "search",
        ),
        (
            {
                "until_precise": {
                    "metric": "latency.p95",
                    "relative_half_width": 0.1,
                    "max_replications": 3,
                },
                "replications": 5,
            },
            "(scenario)",
        ),
    ],
)
def test_invalid_documents_name_the_field(fields: dict[str, Any], where: str) -> None:
    problems = problems_of(
        lambda: parse_experiment({"scenario": parsing_server(users=30, horizon_s=10.0), **fields})
    )
    assert any(p.startswith(where) for p in problems), problems


def test_a_sweep_and_a_search_together_are_refused() -> None:
    problems = problems_of(
        lambda: parse_experiment(
            {
                "scenario": parsing_server(users=30, horizon_s=10.0),
                "sweep": [{"path": "rqs_input.avg_active_users.mean", "values": [1]}],
                "search": {"objective": {"metric": "latency.p95", "at_most": 1}},
            }
        )
    )
    assert any("not both" in p for p in problems)


def test_prepare_checks_the_experiment_against_its_scenario() -> None:
    bad = {
        "until_precise": {
            "metric": "latency.p97",
            "relative_half_width": 0.1,
            "max_replications": 20,
        },
        "warmup_s": 10.0,
    }
    problems = problems_of(lambda: prepare(spec(**bad)))
    assert any(p.startswith("until_precise.metric: unknown metric 'latency.p97'") for p in problems)
    assert any(p.startswith("warmup_s: must be shorter than the horizon") for p in problems)

    broken = parsing_server(users=30, horizon_s=10.0)
    broken["topology_graph"]["edges"][0]["target"] = "nowhere"
    problems = problems_of(lambda: prepare(ExperimentSpec(scenario=broken)))
    assert all(p.startswith("scenario.") for p in problems)

    problems = problems_of(
        lambda: prepare(spec(sweep=[{"path": "rqs_input.avg_users", "values": [1, 2]}]))
    )
    assert problems[0].startswith("sweep[0].path: rqs_input has no field 'avg_users'")

    cores = "topology_graph.nodes.servers.srv.server_resources.cpu_cores"
    problems = problems_of(lambda: prepare(spec(sweep=[{"path": cores, "values": [2, 0]}])))
    assert len(problems) == 1
    assert f"at {cores}=0" in problems[0]


def test_huge_ranges_and_grids_are_refused_before_they_are_built() -> None:
    wide = {"start": -1e308, "stop": 1e308, "step": 1e-300}
    problems = problems_of(
        lambda: parse_experiment(
            {
                "scenario": parsing_server(users=30, horizon_s=10.0),
                "sweep": [{"path": "seed", "range": wide}],
            }
        )
    )
    assert any("more than 1000 points" in p for p in problems)
    paths = [
        "rqs_input.avg_active_users.mean",
        "rqs_input.avg_request_per_minute_per_user.mean",
        "topology_graph.nodes.servers.srv.server_resources.cpu_cores",
        "topology_graph.nodes.servers.srv.server_resources.ram_mb",
    ]
    grid = [{"path": p, "range": {"start": 1, "stop": 999, "step": 1}} for p in paths]
    problems = problems_of(lambda: prepare(spec(sweep=grid)))
    assert problems == ["sweep: 996005996001 points, more than 1000"]  # 999 ** 4
    twice = [{"path": paths[0], "values": [1]}, {"path": paths[0], "values": [2]}]
    assert problems_of(lambda: prepare(spec(sweep=twice))) == [
        "sweep[1].path: this path is swept twice"
    ]


def test_prepare_enforces_a_cap_on_replications() -> None:
    sweep = [{"path": "rqs_input.avg_active_users.mean", "values": [10, 20, 30]}]
    experiment = spec(replications=10, sweep=sweep)
    assert most_replications(experiment) == 30
    assert prepare(experiment, max_replications=30).seed == 1
    problems = problems_of(lambda: prepare(experiment, max_replications=29))
    assert "up to 30 replications, more than the limit of 29" in problems[0]
    search = spec(replications=4, search={"objective": {"metric": "latency.p95", "at_most": 1}})
    assert most_replications(search) == 16 * 30


def traced_scenario(points: int) -> dict[str, Any]:
    """`parsing_server` fed by a rate trace of `points` points: ~38 bytes of JSON each."""
    data = parsing_server(users=30, horizon_s=10.0)
    trace = [{"at_s": i * 10 / points, "rate_per_s": 20.0 + i % 7} for i in range(points)]
    generator = data["rqs_input"]
    generator.pop("avg_active_users")
    generator.pop("avg_request_per_minute_per_user")
    generator["arrival_rate"] = {"shape": "trace", "points": trace}
    return data


def test_preparing_a_sweep_keeps_no_scenario_of_its_points() -> None:
    cores = "topology_graph.nodes.servers.srv.server_resources.cpu_cores"
    sweep = [{"path": cores, "range": {"start": 1, "stop": 40, "step": 1}}]
    experiment = ExperimentSpec.model_validate(
        {"scenario": traced_scenario(2000), "seed": 1, "sweep": sweep}
    )
    tracemalloc.start()
    try:
        prepared = prepare(experiment)
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Each of the 40 parsed point scenarios takes about 1 MB; kept, they took 40.
    assert kept < 8_000_000
    assert prepared.check(Point(((cores, 3),))) is None


def test_the_work_of_validating_a_sweep_is_bounded() -> None:
    sweep = [
        {"path": "rqs_input.avg_active_users.mean", "range": {"start": 1, "stop": 400, "step": 1}}
    ]
    experiment = spec(sweep=sweep)
    size_kb = len(json.dumps(experiment.scenario, separators=(",", ":"))) / 1000
    assert prepare(experiment, max_sweep_validation_mb=400 * size_kb / 1000 + 0.01).seed == 1
    problems = problems_of(lambda: prepare(experiment, max_sweep_validation_mb=0.05))
    assert len(problems) == 1
    assert problems[0].startswith(f"sweep: validating 400 points of a {size_kb:.0f} KB scenario")
    assert "more than the 0.05 MB of ASYNCFLOW_MAX_SWEEP_VALIDATION_MB" in problems[0]


def test_the_root_seed_is_the_experiments_else_the_scenarios_else_fresh() -> None:
    data = parsing_server(users=30, horizon_s=10.0)
    assert prepare(ExperimentSpec(scenario={**data, "seed": 9})).seed == 9
    assert prepare(ExperimentSpec(scenario={**data, "seed": 9}, seed=4)).seed == 4
    assert prepare(ExperimentSpec(scenario=data)).seed >= 0


# Replications and warm-up.


def test_replication_i_is_reproducible_alone() -> None:
    prepared = prepare(spec(replications=3))
    report = run_experiment(prepared)
    third = report.points[0].replications[2]
    alone = run_replication(prepared.scenario, 2, replication_seed(1, 2), 0.0)
    assert third.seed == replication_seed(1, 2)
    assert alone.metrics == third.metrics
    means = [r.metrics["latency.mean"] for r in report.points[0].replications]
    assert len(set(means)) == 3


def test_the_summary_is_the_t_interval_of_the_per_replication_values() -> None:
    report = run_experiment(prepare(spec(replications=4)))
    point = report.points[0]
    values = [r.metrics["latency.p95"] for r in point.replications]
    summary = point.summary["latency.p95"]
    mean = float(np.mean(values))
    error = float(np.std(values, ddof=1)) / 2
    assert summary.n == 4
    assert summary.mean == pytest.approx(mean)
    assert summary.standard_error == pytest.approx(error)
    assert summary.high == pytest.approx(mean + 3.182446305 * error)
    for name in report.metrics:
        assert name in point.summary
    assert {"servers.srv.cpu_utilisation", "requests.dropped", "throughput.mean_rps"} <= set(
        report.metrics
    )
    assert report.complete
    assert report.replications_done == report.replications_planned == 4


def test_a_fixed_warm_up_leaves_out_early_completions() -> None:
    prepared = prepare(spec(replications=2))
    whole = run_replication(prepared.scenario, 0, 5, 0.0)
    trimmed = run_replication(prepared.scenario, 0, 5, 2.0)
    assert whole.discarded == 0
    assert whole.warmup_s == 0
    assert 2.0 <= trimmed.warmup_s < 2.1
    assert 30 < trimmed.discarded < 100
    completed = trimmed.metrics["requests.completed"]
    assert completed is not None
    expected_rps = (completed - trimmed.discarded) / (10.0 - trimmed.warmup_s)
    assert trimmed.metrics["throughput.mean_rps"] == pytest.approx(expected_rps)
    assert trimmed.metrics["latency.mean"] != whole.metrics["latency.mean"]
    assert trimmed.metrics["requests.completed"] == whole.metrics["requests.completed"]


def test_mser5_warm_up_is_reported() -> None:
    prepared = prepare(spec(replications=2, warmup_s="mser5"))
    replication = run_replication(prepared.scenario, 0, 5, "mser5")
    assert replication.discarded % 5 == 0
    assert 0 <= replication.warmup_s <= 10.0
    assert run_experiment(prepared).warmup == "mser5"


# The plan, on synthetic replications so that its logic is checked exactly.


def synthetic(metric: Callable[[Point, int], float]) -> Callable[[ExperimentSpec], Any]:
    """Run a plan to its end with replications whose `latency.p95` is metric(point, index)."""

    def run(experiment: ExperimentSpec) -> Any:
        prepared = prepare(experiment)
        done: dict[str, dict[int, Replication]] = {}
        for _ in range(1000):
            step = plan(experiment, prepared.base, 1, done, prepared.metrics, prepared.check)
            if not step.needed:
                return step
            for need in step.needed:
                value = metric(need.point, need.index)
                done.setdefault(need.point.key, {})[need.index] = Replication(
                    index=need.index,
                    seed=replication_seed(1, need.index),
                    warmup_s=0,
                    discarded=0,
                    wall_seconds=0,
                    metrics={"latency.p95": value, "latency.mean": value / 3},
                )
        raise AssertionError("the plan did not finish")

    return run


def noise(index: int) -> float:
    return float(np.random.default_rng(index).normal(0, 1))


def test_until_precise_adds_replications_until_the_target_then_stops() -> None:
    run = synthetic(lambda point, i: 1.0 + 0.1 * noise(i))
    target = {"metric": "latency.p95", "relative_half_width": 0.02, "max_replications": 200}
    step = run(spec(replications=5, until_precise=target))
    point = step.report.points[0]
    summary = point.summary["latency.p95"]
    assert point.precise is True
    assert summary.high is not None
    assert summary.mean is not None
    assert (summary.high - summary.mean) / summary.mean <= 0.02
    assert 20 < summary.n < 200

    capped = run(spec(replications=5, until_precise={**target, "max_replications": 12}))
    assert capped.report.points[0].precise is False
    assert capped.report.points[0].summary["latency.p95"].n == 12


def test_a_sweep_runs_every_point_with_the_same_seeds() -> None:
    users = "rqs_input.avg_active_users.mean"
    cores = "topology_graph.nodes.servers.srv.server_resources.cpu_cores"
    experiment = spec(
        replications=2,
        sweep=[
            {"path": users, "range": {"start": 10, "stop": 30, "step": 10}},
            {"path": cores, "values": [1, 2]},
        ],
    )
    report = run_experiment(prepare(experiment))
    assert [p.values for p in report.points] == [
        {users: u, cores: c} for u in (10, 20, 30) for c in (1, 2)
    ]
    seeds = {tuple(r.seed for r in p.replications) for p in report.points}
    assert seeds == {(replication_seed(1, 0), replication_seed(1, 1))}
    throughput = [p.summary["throughput.mean_rps"].mean for p in report.points]
    assert throughput[0] is not None
    assert throughput[4] is not None
    assert throughput[4] > 2 * throughput[0]


def search_spec(**search: Any) -> ExperimentSpec:
    return spec(
        replications=5,
        search={"objective": {"metric": "latency.p95", "at_most": 0.3}, **search},
    )


def factor_of(point: Point) -> float:
    assert point.factor is not None
    return point.factor


def test_search_brackets_then_bisects_to_the_capacity() -> None:
    # p95 = 0.1 x factor, so the objective p95 <= 0.3 holds up to factor 3.
    run = synthetic(lambda point, i: 0.1 * factor_of(point) * (1 + 0.01 * noise(i)))
    step = run(search_spec(tolerance=0.01))
    search = step.report.search
    assert search.status == "found"
    assert search.low <= 3.0 <= search.high
    # Points inside the final interval were too close to the bound to tell: the
    # interval narrows until its gaps between them are under the tolerance.
    inside = [p for p in step.report.points if search.low < p.factor < search.high]
    assert all(p.verdict == "inconclusive" for p in inside)
    edges = sorted([search.low, search.high, *(p.factor for p in inside)])
    assert max(b - a for a, b in itertools.pairwise(edges)) / search.low <= 0.01
    assert (search.high - search.low) / search.low <= 0.05
    assert search.capacity_value == pytest.approx(60 * search.low)
    factors = [p.factor for p in step.report.points]
    assert factors == sorted(factors)
    assert {1.0, 2.0, 4.0} <= set(factors)
    assert {p.verdict for p in step.report.points} <= {"pass", "fail", "inconclusive"}
    assert all(p.planned == len(p.replications) for p in step.report.points)


def test_search_grows_inconclusive_points_and_keeps_the_interval_honest() -> None:
    # Noise so large that points near the capacity stay inconclusive at 20 replications.
    run = synthetic(lambda point, i: 0.1 * factor_of(point) + 0.05 * noise(i))
    step = run(search_spec(tolerance=0.01, max_replications=20))
    search = step.report.search
    unsure = [p for p in step.report.points if p.verdict == "inconclusive"]
    assert unsure
    assert all(len(p.replications) == 20 for p in unsure)
    assert search.low <= 3.0 <= search.high


@pytest.mark.parametrize(
    ("scale", "status"),
    [(0.001, "above_max_factor"), (100.0, "below_min_factor")],
)
def test_search_reports_a_capacity_outside_its_range(scale: float, status: str) -> None:
    run = synthetic(lambda point, i: scale * factor_of(point) * (1 + 0.01 * noise(i)))
    search = run(search_spec(min_factor=0.25, max_factor=8)).report.search
    assert search.status == status
    assert search.capacity == (8.0 if status == "above_max_factor" else None)


def test_a_min_factor_too_small_to_keep_is_refused_naming_the_field(tmp_path: Path) -> None:
    # Factors are kept to FACTOR_DIGITS decimal places: 1e-300 would be tried as 0.
    with pytest.raises(ValidationError) as caught:
        search_spec(min_factor=1e-300, start=1e-300)
    (error,) = caught.value.errors()
    assert error["loc"] == ("search", "min_factor")
    assert f"at least {MIN_FACTOR:g}" in error["msg"]
    assert "decimal places" in error["msg"]
    objective = {"metric": "latency.p95", "at_most": 0.3}
    path = write_experiment(tmp_path, search={"objective": objective, "min_factor": 1e-300})
    result = CliRunner().invoke(app, ["experiment", str(path)])
    assert result.exit_code == INVALID_INPUT
    assert "search.min_factor" in result.output


def test_a_search_that_never_passes_down_to_the_smallest_min_factor_ends_below_it() -> None:
    run = synthetic(lambda point, i: 1.0 + 0.01 * noise(i))
    search = run(search_spec(min_factor=MIN_FACTOR, max_points=200)).report.search
    assert search.status == "below_min_factor"
    assert search.capacity is None
    assert f"{MIN_FACTOR:g}" in search.message


def test_search_stops_at_max_points() -> None:
    run = synthetic(lambda point, i: 0.1 * factor_of(point) * (1 + 0.01 * noise(i)))
    step = run(search_spec(tolerance=0.0001, max_points=5))
    assert step.report.search.status == "max_points"
    assert len(step.report.points) == 5


def test_partial_reports_show_what_finished() -> None:
    experiment = spec(replications=3)
    prepared = prepare(experiment)
    first = plan(experiment, prepared.base, 1, {}, prepared.metrics, prepared.check)
    assert [n.index for n in first.needed] == [0, 1, 2]
    assert not first.report.complete
    one = run_replication(prepared.scenario, 0, replication_seed(1, 0), 0.0)
    second = plan(experiment, prepared.base, 1, {"[]": {0: one}}, prepared.metrics, prepared.check)
    assert [n.index for n in second.needed] == [1, 2]
    assert second.report.replications_done == 1
    assert second.report.points[0].summary["latency.mean"].n == 1


# Files and the command line.


def test_example_experiments_are_valid() -> None:
    files = sorted(EXAMPLES.glob("*.yml"))
    assert len(files) >= 4
    kinds = {prepare(load_experiment_file(f)).spec.kind for f in files}
    assert kinds == {"replications", "sweep", "search"}


def write_experiment(tmp_path: Path, **fields: Any) -> Path:
    (tmp_path / "scenario.yml").write_text(
        yaml.safe_dump(parsing_server(users=30, horizon_s=10.0)), encoding="utf-8"
    )
    path = tmp_path / "experiment.yml"
    path.write_text(yaml.safe_dump({"scenario": "scenario.yml", "seed": 3, **fields}))
    return path


def test_cli_experiment_prints_a_summary_and_writes_the_report(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, replications=3, warmup_s=1)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["experiment", str(path), "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "latency.p95" in result.output
    assert "95% t intervals" in result.output
    report = json.loads(out.read_text())
    assert report["kind"] == "replications"
    assert len(report["points"][0]["replications"]) == 3
    assert report["points"][0]["replications"][1]["seed"] == replication_seed(3, 1)


def test_cli_experiment_sweep_table(tmp_path: Path) -> None:
    sweep = [{"path": "rqs_input.avg_active_users.mean", "values": [10, 20]}]
    path = write_experiment(tmp_path, replications=2, sweep=sweep)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["experiment", str(path), "-q", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 points" in result.output
    # Beside the latency of completed requests: the share not completed, in percent, and
    # the time to outcome, in milliseconds (on a console wide enough not to wrap them).
    wide = Console(width=400, record=True)
    print_report(wide, ExperimentReport.model_validate_json(out.read_text()))
    shown = wide.export_text()
    header = next(line for line in shown.splitlines() if "latency.p95" in line)
    assert "requests.not_completed_share" in header
    assert "time_to_outcome.p95" in header
    for point in json.loads(out.read_text())["points"]:
        share = point["summary"]["requests.not_completed_share"]["mean"]
        assert f"{share * 100:,.4g} ± " in shown


def test_cli_experiment_exits_2_naming_every_problem(tmp_path: Path) -> None:
    path = write_experiment(
        tmp_path, replications=1, search={"objective": {"metric": "p95", "at_most": 1}}
    )
    result = CliRunner().invoke(app, ["experiment", str(path)])
    assert result.exit_code == INVALID_INPUT
    assert "replications" in result.output
    missing = CliRunner().invoke(app, ["experiment", str(tmp_path / "none.yml")])
    assert missing.exit_code == INVALID_INPUT
    assert "cannot read" in missing.output
    (tmp_path / "scenario.yml").unlink()
    gone = CliRunner().invoke(app, ["experiment", str(path)])
    assert gone.exit_code == INVALID_INPUT
    assert "scenario: cannot read" in gone.output
