"""Run the engine on a calibrated scenario at given loads, through the ``asyncflow`` command.

The engine runs as a child process (``python -m asyncflow_backend.cli run SCENARIO --seed N
--json OUT``), exactly as a user runs it, so the harness depends on the command line's
contract and not on the engine's insides. Each load runs long enough to hold about
``requests`` requests (at least ``min_horizon_s`` simulated seconds), which makes the
simulation's own noise on p99 small against the real system's run-to-run spread. The loads
run ``jobs`` at a time (the real services are stopped by then, so every core is free).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.real_system.calibrate import Calibration

DEFAULT_REQUESTS = 40_000
MIN_HORIZON_S = 60.0


@dataclass(frozen=True)
class Prediction:
    """The engine's latency statistics at one load, in seconds."""

    rate_per_s: float
    mean_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    completed: int


def horizon_for(rate_per_s: float, requests: int = DEFAULT_REQUESTS) -> float:
    """Simulated seconds that hold about ``requests`` arrivals at this rate."""
    if rate_per_s <= 0:
        raise ValueError("a rate must be > 0")
    return max(MIN_HORIZON_S, requests / rate_per_s)


def run_engine(scenario: dict[str, object], seed: int, workdir: Path) -> dict[str, object]:
    """The results document of one engine run; RuntimeError with the CLI's message on failure."""
    path = workdir / "scenario.yml"
    out = workdir / "results.json"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    completed = subprocess.run(
        [sys.executable, "-m", "asyncflow_backend.cli", "run", str(path), "--seed", str(seed),
         "--json", str(out), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(
            f"the engine refused the scenario: {completed.stderr or completed.stdout}"
        )
    results: dict[str, object] = json.loads(out.read_text())
    return results


def _predict_one(calibration: Calibration, rate: float, seed: int, requests: int) -> Prediction:
    scenario = calibration.scenario(rate, horizon_for(rate, requests))
    with tempfile.TemporaryDirectory(prefix="realsys-predict-") as tmp:
        results = run_engine(scenario, seed, Path(tmp))
    latency = results["latency"]
    counts = results["requests"]
    assert isinstance(latency, dict)
    assert isinstance(counts, dict)
    return Prediction(
        rate_per_s=rate,
        mean_s=float(latency["mean"]),
        p50_s=float(latency["p50"]),
        p95_s=float(latency["p95"]),
        p99_s=float(latency["p99"]),
        completed=int(counts["completed"]),
    )


def predict(
    calibration: Calibration,
    rates: Sequence[float],
    seed: int = 1,
    requests: int = DEFAULT_REQUESTS,
    jobs: int = 2,
) -> list[Prediction]:
    """The engine's latency at each rate: one long run per rate, seeds ``seed``, ``seed + 1``...

    Results come in the order of ``rates``; ``jobs`` engine processes run at a time.
    """
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [
            pool.submit(_predict_one, calibration, rate, seed + index, requests)
            for index, rate in enumerate(rates)
        ]
        return [future.result() for future in futures]
