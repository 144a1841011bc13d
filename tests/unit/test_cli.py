"""The `asyncflow` command line: a contract scripts rely on.

Exit 0 on success; exit 2 with every problem on stderr, and no traceback, on
invalid input; `run --json` writes the results document; `--seed` replays.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from asyncflow_backend.cli import INVALID_INPUT, app
from asyncflow_backend.schemas.results import SimulationResults
from support.scenarios import one_server_builder

EXAMPLES = Path(__file__).parents[2] / "example"


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yml"
    path.write_text(one_server_builder().to_yaml(), encoding="utf-8")
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    document = one_server_builder().to_dict()
    document["topology_graph"]["edges"][2]["target"] = "nowhere"
    document["topology_graph"]["nodes"]["servers"][0]["server_resources"]["cpu_cores"] = 0
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def the_console_script() -> list[str]:
    """The installed `asyncflow` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "asyncflow"
    assert script.exists(), f"the package is not installed with its script at {script}"
    return [str(script)]


def without_wall_time(document: dict[str, Any]) -> dict[str, Any]:
    document = dict(document)
    document["meta"] = {k: v for k, v in document["meta"].items() if k != "wall_seconds"}
    return document


# validate


def test_validate_accepts_a_valid_file(scenario_file: Path) -> None:
    result = invoke("validate", scenario_file)

    assert result.exit_code == 0
    assert "valid" in result.stdout
    assert "1 server(s), 3 edge(s)" in result.stdout
    # Its edges keep the default dropout: a warning, nothing else.
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["warning"]


def test_validate_reports_every_problem_on_stderr(broken_file: Path) -> None:
    result = invoke("validate", broken_file)

    assert result.exit_code == INVALID_INPUT
    assert result.stdout == ""
    assert "invalid scenario" in result.stderr
    assert (
        "topology_graph.nodes.servers[0].server_resources.cpu_cores: Input should be greater "
        "than 0 (in 'srv')" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_validate_reports_route_problems(tmp_path: Path) -> None:
    document = one_server_builder().to_dict()
    document["topology_graph"]["edges"][2]["target"] = "nowhere"
    path = tmp_path / "unknown-node.yml"
    path.write_text(json.dumps(document), encoding="utf-8")

    result = invoke("validate", path)

    assert result.exit_code == INVALID_INPUT
    assert (
        "topology_graph.edges[2].target: edge 'srv-client' ends at unknown node 'nowhere'"
        in result.stderr
    )


def test_validate_locates_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("rqs_input:\n  id: [gen\nsim_settings: {}\n", encoding="utf-8")

    result = invoke("validate", path)

    assert result.exit_code == INVALID_INPUT
    assert "invalid YAML at line 3" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = invoke("validate", tmp_path / "absent.yml")

    assert result.exit_code == INVALID_INPUT
    assert "cannot read" in result.stderr


def test_validate_every_example() -> None:
    for path in sorted(EXAMPLES.glob("*.y*ml")) + sorted(EXAMPLES.glob("*.json")):
        result = invoke("validate", path)
        assert result.exit_code == 0, (path, result.stderr)


# run


def test_run_rejects_invalid_input_like_validate(broken_file: Path) -> None:
    result = invoke("run", broken_file, "--json", broken_file.with_suffix(".out.json"))

    assert result.exit_code == INVALID_INPUT
    assert "cpu_cores" in result.stderr
    assert "'srv'" in result.stderr
    assert not broken_file.with_suffix(".out.json").exists()


def test_run_writes_a_results_document(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    result = invoke("run", scenario_file, "--seed", "5", "--json", out, "-q")

    assert result.exit_code == 0, result.stderr
    results = SimulationResults.model_validate_json(out.read_text(encoding="utf-8"))
    assert results.meta.seed == 5
    assert results.requests.completed > 0
    assert results.meta.simulated_seconds == 20
    assert "completed" in result.stdout
    assert f"{results.requests.completed:,}" in result.stdout
    assert f"results written to {out}" in result.stdout


def test_the_same_seed_gives_the_same_numbers(scenario_file: Path, tmp_path: Path) -> None:
    outs = [tmp_path / f"run-{i}.json" for i in range(3)]
    for out, seed in zip(outs, ("11", "11", "12"), strict=True):
        assert invoke("run", scenario_file, "--seed", seed, "--json", out, "-q").exit_code == 0

    first, second, other = (json.loads(out.read_text(encoding="utf-8")) for out in outs)
    assert without_wall_time(first) == without_wall_time(second)
    assert first["latency"] != other["latency"]


def test_the_scenario_seed_is_used_and_the_flag_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "seeded.yml"
    path.write_text(one_server_builder(seed=77).to_yaml(), encoding="utf-8")
    from_file, overridden = tmp_path / "a.json", tmp_path / "b.json"

    assert invoke("run", path, "--json", from_file, "-q").exit_code == 0
    assert invoke("run", path, "--seed", "78", "--json", overridden, "-q").exit_code == 0

    assert json.loads(from_file.read_text(encoding="utf-8"))["meta"]["seed"] == 77
    assert json.loads(overridden.read_text(encoding="utf-8"))["meta"]["seed"] == 78


def test_an_unseeded_run_reports_the_seed_it_drew(scenario_file: Path, tmp_path: Path) -> None:
    drawn, replayed = tmp_path / "drawn.json", tmp_path / "replayed.json"
    assert invoke("run", scenario_file, "--json", drawn, "-q").exit_code == 0
    seed = json.loads(drawn.read_text(encoding="utf-8"))["meta"]["seed"]

    replay = invoke("run", scenario_file, "--seed", str(seed), "--json", replayed, "-q")

    assert replay.exit_code == 0
    first = json.loads(drawn.read_text(encoding="utf-8"))
    assert without_wall_time(first) == without_wall_time(
        json.loads(replayed.read_text(encoding="utf-8"))
    )


def test_a_negative_seed_is_a_usage_error(scenario_file: Path) -> None:
    result = invoke("run", scenario_file, "--seed", "-1")

    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


# The real entry point, in a subprocess.


def test_installed_command_exits_2_without_traceback(broken_file: Path) -> None:
    for command in ("validate", "run"):
        done = subprocess.run(
            [*the_console_script(), command, str(broken_file)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == INVALID_INPUT, done.stderr
        assert "topology_graph.nodes.servers[0].server_resources.cpu_cores" in done.stderr
        assert "'srv'" in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_installed_command_runs_and_replays(scenario_file: Path, tmp_path: Path) -> None:
    outs = [tmp_path / "one.json", tmp_path / "two.json"]
    for out in outs:
        done = subprocess.run(
            [*the_console_script(), "run", str(scenario_file), "--seed", "3", "--json", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr

    one, two = (json.loads(out.read_text(encoding="utf-8")) for out in outs)
    SimulationResults.model_validate(one)
    assert without_wall_time(one) == without_wall_time(two)


def console(command: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `asyncflow` console script run with `command` in `environment`."""
    return subprocess.run(
        [*the_console_script(), *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )


@pytest.mark.parametrize(
    "command", [["serve", "--processes", "2", "--port", "1"], ["worker", "--processes", "1"]]
)
def test_commands_that_need_redis_say_so_without_it(command: list[str]) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "ASYNCFLOW_REDIS_URL"}
    done = console(command, environment)
    assert done.returncode == INVALID_INPUT, done.stderr
    assert "ASYNCFLOW_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["worker"], ["db", "upgrade"]])
def test_a_setting_that_cannot_be_read_exits_2_naming_its_variable(command: list[str]) -> None:
    done = console(command, {**os.environ, "ASYNCFLOW_SUBMIT_RATE_LIMIT": "often"})
    assert done.returncode == INVALID_INPUT, done.stderr
    assert done.stderr.startswith("ASYNCFLOW_SUBMIT_RATE_LIMIT: Value error, couldn't parse")
    assert "Traceback" not in done.stderr


# output paths, checked before anything runs


def test_run_creates_the_missing_folders_of_the_json_file(
    scenario_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.json"

    result = invoke("run", scenario_file, "--seed", "1", "--quiet", "--json", target)

    assert result.exit_code == 0, result.stderr
    SimulationResults.model_validate_json(target.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("option", "make", "reason"),
    [
        ("--json", lambda tmp: (tmp / "a-file").touch() or tmp / "a-file" / "out.json", "a file"),
        ("--json", lambda tmp: tmp, "is a folder"),
        ("--plots", lambda tmp: (tmp / "a-file").touch() or tmp / "a-file", "a file"),
        (
            "--plots",
            lambda tmp: (tmp / "a-file").touch() or tmp / "a-file" / "charts",
            "cannot create the folder (Not a directory)",
        ),
    ],
    ids=["json-under-a-file", "json-is-a-folder", "plots-is-a-file", "plots-under-a-file"],
)
def test_an_output_path_that_cannot_be_written_exits_2_before_simulating(
    scenario_file: Path, tmp_path: Path, option: str, make: Any, reason: str
) -> None:
    target = make(tmp_path)

    result = invoke("run", scenario_file, "--quiet", option, target)

    assert result.exit_code == INVALID_INPUT
    assert f"{option} {target}" in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing was simulated: no summary


def test_run_writes_charts_into_an_existing_folder_again(
    scenario_file: Path, tmp_path: Path
) -> None:
    charts = tmp_path / "charts"
    for _ in range(2):
        result = invoke("run", scenario_file, "--seed", "1", "--quiet", "--plots", charts)
        assert result.exit_code == 0, result.stderr

    assert (charts / "dashboard.png").stat().st_size > 0


# help and version


@pytest.mark.parametrize(
    "command", [[], ["run"], ["validate"], ["serve"], ["worker"], ["db", "upgrade"]]
)
def test_help_shows_no_value_after_a_flag(command: list[str]) -> None:
    result = invoke(*command, "--help")

    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    assert "range>" not in result.stdout
    assert "--help  " in result.stdout or "--help\n" in result.stdout


def test_run_help_names_what_each_option_takes() -> None:
    text = invoke("run", "--help").stdout

    for shown in (
        "--seed N",
        "--json FILE",
        "--plots DIR",
        "-q, --quiet  ",
        "--plot-format png|svg|both",
    ):
        assert shown in text


def test_version_prints_the_installed_version() -> None:
    from asyncflow_backend import engine_version

    result = invoke("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"asyncflow {engine_version()}"


# warnings


def test_validate_and_run_print_warnings_on_stderr_and_go_on(tmp_path: Path) -> None:
    document = one_server_builder(seed=1).to_dict()
    document["topology_graph"]["edges"][1]["latency"] = {"mean": 0.002}
    path = tmp_path / "warned.yml"
    path.write_text(json.dumps(document), encoding="utf-8")

    checked = invoke("validate", path)
    ran = invoke("run", path, "--quiet", "--json", tmp_path / "out.json")

    for result in (checked, ran):
        assert result.exit_code == 0, result.stderr
        lines = result.stderr.splitlines()
        assert (
            "warning: topology_graph.edges[1].latency: edge 'client-srv': no distribution"
            in (lines[0])
        )
        assert lines[1].startswith("warning: topology_graph.edges: no edge sets dropout_rate")
    assert (tmp_path / "out.json").exists()


def test_the_summary_shows_every_outcome_goodput_and_how_requests_ended() -> None:
    result = invoke("run", EXAMPLES / "admission_timeouts.yml", "--seed", "4")

    assert result.exit_code == 0, result.output
    for words in ("timed out", "rejected", "late answers", "goodput", "How requests ended"):
        assert words in result.output
    for reason in ("queue_full", "withdrawn_from_ready_queue", "stopped_after_cpu_step"):
        assert reason in result.output


def test_the_summary_shows_the_failures_of_each_server() -> None:
    result = invoke("run", EXAMPLES / "failures.yml", "--seed", "4")

    assert result.exit_code == 0, result.output
    for words in ("Failures", "availability", "api-a", "server_failure"):
        assert words in result.output


def test_a_summary_without_the_features_shows_none_of_their_rows(scenario_file: Path) -> None:
    result = invoke("run", scenario_file, "--seed", "4")

    assert result.exit_code == 0, result.output
    # Beside the latency always: the goodput, what did not complete, the time to outcome.
    for words in ("goodput (completed)", "not completed", "time to outcome p95"):
        assert words in result.output
    for words in (
        "timed out",
        "rejected",
        "late answers",
        "Failures",
        "retries",
        "attempts",
    ):
        assert words not in result.output


def test_run_shows_where_the_mean_response_time_goes(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"

    result = invoke("run", scenario_file, "--seed", "5", "--json", out)

    assert result.exit_code == 0, result.stderr
    results = SimulationResults.model_validate_json(out.read_text(encoding="utf-8"))
    assert "Where the mean response time goes" in result.stdout
    largest = max(results.breakdown, key=lambda part: part.share)
    assert largest.place in result.stdout
    assert largest.category in result.stdout


def test_the_summary_counts_attempts_and_retries() -> None:
    result = invoke("run", EXAMPLES / "retry_storm_budget.yml", "--seed", "4")

    assert result.exit_code == 0, result.output
    for words in ("retries refused by the budget", "attempts (first + retries)", "timed out"):
        assert words in result.output


def test_when_more_than_one_percent_did_not_complete_the_summary_says_so_first() -> None:
    result = invoke("run", EXAMPLES / "retry_storm.yml", "--seed", "1")

    assert result.exit_code == 0, result.output
    warning = result.stdout.index("Warning: 80 % of requests did not complete")
    assert warning < result.stdout.index("latency p95 (completed)")
    assert warning < result.stdout.index("requests generated")
    said = " ".join(result.stdout[warning:].split())
    assert "(9,441 timed out, 221 still in flight at the end); goodput 8.04 req/s" in said
    assert "counts completed requests only" in said
    assert "time to outcome p95 (all ended)" in said


def test_a_metastable_failure_is_said_first_and_a_recovery_in_the_table() -> None:
    storm = invoke("run", EXAMPLES / "retry_storm.yml", "--seed", "4")
    budget = invoke("run", EXAMPLES / "retry_storm_budget.yml", "--seed", "4")

    assert storm.exit_code == 0, storm.output
    assert budget.exit_code == 0, budget.output
    said = " ".join(storm.stdout.split())
    assert said.startswith(
        "Metastable failure: did not recover after api:capacity@60 ended at 90 s; by the "
        "horizon (300 s) goodput and queues had not returned to their level before it."
    )
    assert "recovery after api:capacity@60 │ not by 300 s" in said
    assert "Metastable" not in budget.stdout
    assert "recovery after api:capacity@60 │ recovered in 47 s" in " ".join(budget.stdout.split())
