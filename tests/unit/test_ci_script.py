"""`.ci/run` times each phase and runs the README's test command, and a hung test fails
with its name rather than stalling the run."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_ci_script_prints_the_time_of_each_phase_even_when_one_fails() -> None:
    script = "set -euo pipefail; . .ci/phases.sh; phase install true; phase lint false; phase x :"
    outcome = subprocess.run(
        ["bash", "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=30
    )

    assert outcome.returncode == 1
    summary = outcome.stderr.split("== phase times (exit status 1)\n")[1].splitlines()
    assert [line.split()[0] for line in summary] == ["install", "lint", "total"]
    assert summary[1].endswith("s  (failed)")


def test_the_ci_script_times_the_readme_test_command_phase_by_phase() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    for name in ("install", "lint", "types", "tests"):
        assert f"\nphase {name} " in script
    install = (
        "python3 -m venv .venv && .venv/bin/pip install -q poetry && .venv/bin/poetry install -q"
    )
    assert f"install() {{ {install}; }}" in script
    assert f"{install} && .venv/bin/poetry run pytest\n" in readme
    assert "\nphase tests .venv/bin/poetry run pytest\n" in script


def test_a_hung_test_fails_with_its_name(tmp_path: Path) -> None:
    hung = tmp_path / "test_hung.py"
    hung.write_text("import time\n\n\ndef test_sleeps_forever():\n    time.sleep(60)\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    outcome = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "--timeout=1", hung],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
    )

    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    assert "FAILED test_hung.py::test_sleeps_forever" in outcome.stdout
    assert "Timeout (>1.0s)" in outcome.stdout


def test_every_test_has_a_ceiling_generous_enough_for_a_busy_machine() -> None:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ceiling = settings["tool"]["pytest"]["ini_options"]["timeout"]
    dev = settings["tool"]["poetry"]["group"]["dev"]["dependencies"]

    assert "pytest-timeout" in dev
    assert 120 <= ceiling <= 900
    assert 'name = "pytest-timeout"' in (ROOT / "poetry.lock").read_text(encoding="utf-8")
