"""`asyncflow run` stops a run past its memory budget: exit 1 and one line naming the setting."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from asyncflow_backend.builder import ScenarioBuilder


def piling_up(path: Path) -> Path:
    """20,000 requests/s into 100/s of capacity: the ready queue grows by about 20,000
    requests (some 6 MB) each simulated second."""
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=20_000, rpm=60)
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(0.01)
        .chain("gen", "client", "srv", "client", latency=0.001)
        .settings(horizon=60, sample_period=0.1)
        .to_dict()
    )
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return path


def run(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncflow_backend.cli", "run", *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env=None if env is None else {**os.environ, **env},
    )


def test_a_run_past_its_memory_budget_exits_1_naming_the_budget(tmp_path: Path) -> None:
    scenario = piling_up(tmp_path / "piling_up.yml")

    outcome = run(str(scenario), "-q", "--max-memory-mb", "16", "--json", str(tmp_path / "o.json"))

    assert outcome.returncode == 1, outcome.stderr
    message = "run failed: used more than its memory budget of 16 MB (ASYNCFLOW_MAX_RUN_MEMORY_MB)"
    assert message in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not (tmp_path / "o.json").exists()


def test_the_budget_is_the_setting_unless_the_option_gives_one(tmp_path: Path) -> None:
    outcome = run("--help")

    assert "--max-memory-mb" in outcome.stdout
    assert "ASYNCFLOW_MAX_RUN_MEMORY_MB" in outcome.stdout


def test_the_setting_is_the_budget_when_no_option_is_given(tmp_path: Path) -> None:
    scenario = piling_up(tmp_path / "piling_up.yml")

    # Named in lower case: the settings match variable names without regard to case.
    outcome = run(str(scenario), "-q", env={"asyncflow_max_run_memory_mb": "16"})

    assert outcome.returncode == 1, outcome.stderr
    assert "memory budget of 16 MB (ASYNCFLOW_MAX_RUN_MEMORY_MB)" in outcome.stderr


def test_a_budget_setting_that_cannot_be_read_exits_2_naming_it(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parents[2] / "example" / "mm1.yml"

    outcome = run(str(scenario), "-q", env={"ASYNCFLOW_MAX_RUN_MEMORY_MB": "lots"})

    assert outcome.returncode == 2, outcome.stderr
    assert outcome.stderr.strip().endswith(
        "ASYNCFLOW_MAX_RUN_MEMORY_MB: Input should be a valid integer, unable to parse string"
        " as an integer"
    )
    assert "Traceback" not in outcome.stderr


def test_asyncflow_run_loads_no_service_settings_or_scipy_stats(tmp_path: Path) -> None:
    # Every run checks its budget and its warnings; neither may pull in the service, its
    # settings (pydantic-settings and the rate-limit parser: 0.25 s) or scipy.stats (each
    # once cost `asyncflow run` start-up time). The probe runs with no ASYNCFLOW_ variable.
    scenario = Path(__file__).resolve().parents[2] / "example" / "mm1.yml"
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from asyncflow_backend.cli import app\n"
        f"result = CliRunner().invoke(app, ['run', {str(scenario)!r}, '-q', '--seed', '1'])\n"
        "assert result.exit_code == 0, result.output\n"
        "loaded = [m for m in sys.modules if m.startswith(('asyncflow_backend.jobs',"
        " 'asyncflow_backend.db', 'sqlalchemy', 'dramatiq', 'scipy.stats',"
        " 'pydantic_settings', 'limits'))]\n"
        "sys.exit(', '.join(loaded) or None)\n"
    )
    quiet = {k: v for k, v in os.environ.items() if not k.upper().startswith("ASYNCFLOW_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], check=False, capture_output=True, text=True, env=quiet
    )
    assert done.returncode == 0, done.stderr
