"""Compare our engine with the reference library asyncflow-sim on a directory of scenarios.

Every scenario runs several times through each engine, with different seeds on each side (the
two engines draw their random numbers differently, so equal seeds would mean nothing). For each
of mean, p50, p95, p99 latency and completed requests the table shows the mean over seeds and
its standard error on both sides, the relative difference, and z = difference / combined
standard error: |z| below ~2 is what noise alone produces, a large |z| is a real bias.

    python benchmarks/compare_reference.py [DIRECTORY] [--seeds 5] [--jobs 2]

Target: every relative difference within 4% (`--tolerance`). Exit status 1 if one is not, or
if a run fails. A scenario the reference rejects (it uses one of our extensions) is skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE_RUNNER = HERE / "reference_runner.py"
DEFAULT_EXAMPLES = Path("/work/shared/anchors/asyncflow-examples")
DEFAULT_REF_PYTHON = Path("/work/.refvenv/bin/python")
REF_VENV_HINT = (
    "create it with: python3.12 -m venv .refvenv && .refvenv/bin/pip install asyncflow-sim"
)
METRICS = ("mean", "p50", "p95", "p99", "completed")
LATENCY_METRICS = {"mean", "p50", "p95", "p99"}
ENGINES = ("reference", "ours")
INVALID_INPUT = 2
# Our seeds start here so that no seed is shared with the reference runs.
OURS_SEED_OFFSET = 1000


@dataclass(frozen=True)
class Job:
    """One run of one scenario through one engine with one seed."""

    scenario: Path
    engine: str
    seed: int


@dataclass
class Samples:
    """Per-seed values of every metric for one scenario and one engine."""

    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    errors: list[str] = field(default_factory=list)
    rejected: str | None = None

    def add(self, summary: dict[str, float]) -> None:
        for metric in METRICS:
            self.values[metric].append(summary[metric])


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds and its standard error."""

    mean: float
    stderr: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        spread = statistics.stdev(values) if len(values) > 1 else math.nan
        return cls(statistics.fmean(values), spread / math.sqrt(len(values)))


@dataclass(frozen=True)
class Comparison:
    """One metric of one scenario, both engines."""

    scenario: str
    metric: str
    reference: Estimate
    ours: Estimate

    @property
    def relative(self) -> float:
        return (self.ours.mean - self.reference.mean) / self.reference.mean

    @property
    def z(self) -> float:
        combined = math.hypot(self.ours.stderr, self.reference.stderr)
        return (self.ours.mean - self.reference.mean) / combined if combined else math.inf


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory", nargs="?", type=Path, default=DEFAULT_EXAMPLES, help="scenario files"
    )
    parser.add_argument("--seeds", type=int, default=5, help="runs per scenario and engine")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--tolerance", type=float, default=0.04, help="allowed |relative diff|")
    parser.add_argument("--ref-python", type=Path, default=DEFAULT_REF_PYTHON)
    parser.add_argument("--json", type=Path, default=None, help="also write raw per-seed values")
    return parser.parse_args(argv)


class Rejected(Exception):
    """The reference refuses the scenario (it uses something only we accept)."""


def _scenarios(directory: Path) -> list[Path]:
    found = sorted(p for p in directory.iterdir() if p.suffix in {".yml", ".yaml", ".json"})
    if not found:
        sys.exit(f"no scenarios (*.yml, *.yaml, *.json) in {directory}")
    return found


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def _run_reference(job: Job, ref_python: Path) -> dict[str, float]:
    command = [str(ref_python), str(REFERENCE_RUNNER), str(job.scenario), "--seed", str(job.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == INVALID_INPUT:
        raise Rejected(_last_line(done))
    if done.returncode != 0:
        raise RuntimeError(_last_line(done))
    summary = json.loads(done.stdout)
    return {"completed": summary["requests"]["completed"], **summary["latency"]}


def _run_ours(job: Job) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "results.json"
        command = [sys.executable, "-m", "asyncflow_backend.cli", "run", str(job.scenario)]
        command += ["--seed", str(job.seed), "--json", str(out), "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(_last_line(done))
        results = json.loads(out.read_text(encoding="utf-8"))
    return {"completed": results["requests"]["completed"], **results["latency"]}


def _run(job: Job, ref_python: Path) -> tuple[Job, dict[str, float] | Exception]:
    try:
        summary = _run_reference(job, ref_python) if job.engine == "reference" else _run_ours(job)
    except (Rejected, RuntimeError, OSError, ValueError, KeyError) as exc:
        return job, exc
    return job, summary


def collect(
    scenarios: list[Path], seeds: int, jobs: int, ref_python: Path
) -> dict[str, dict[str, Samples]]:
    """Run everything, `jobs` processes at a time; samples[scenario][engine]."""
    work = [
        Job(scenario, engine, seed + (OURS_SEED_OFFSET if engine == "ours" else 0))
        for scenario in scenarios
        for engine in ENGINES
        for seed in range(1, seeds + 1)
    ]
    samples = {s.stem: {e: Samples() for e in ENGINES} for s in scenarios}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for done, (job, outcome) in enumerate(pool.map(lambda j: _run(j, ref_python), work), 1):
            bucket = samples[job.scenario.stem][job.engine]
            if isinstance(outcome, Rejected):
                bucket.rejected = str(outcome)
            elif isinstance(outcome, Exception):
                bucket.errors.append(f"{job.engine} seed {job.seed}: {outcome}")
            else:
                bucket.add(outcome)
            print(f"\r{done}/{len(work)} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return samples


def compare(
    samples: dict[str, dict[str, Samples]],
) -> tuple[list[Comparison], list[str], list[str]]:
    """Comparisons of every scenario both engines ran, the skipped scenarios, the errors.

    A scenario the reference rejects (it uses one of our extensions) is skipped, not failed.
    """
    comparisons: list[Comparison] = []
    skipped: list[str] = []
    errors: list[str] = []
    for scenario, by_engine in samples.items():
        rejected = by_engine["reference"].rejected
        if rejected is not None:
            skipped.append(f"{scenario}: {rejected}")
            continue
        for engine in ENGINES:
            errors += [f"{scenario}: {e}" for e in by_engine[engine].errors]
        if not all(by_engine[e].values["mean"] for e in ENGINES):
            continue
        for metric in METRICS:
            ref, ours = (Estimate.of(by_engine[e].values[metric]) for e in ENGINES)
            comparisons.append(Comparison(scenario, metric, ref, ours))
    return comparisons, skipped, errors


def _show(metric: str, estimate: Estimate) -> str:
    if metric in LATENCY_METRICS:
        return f"{estimate.mean * 1e3:.2f} ± {estimate.stderr * 1e3:.2f}"
    return f"{estimate.mean:,.0f} ± {estimate.stderr:,.0f}"


def render(comparisons: list[Comparison], tolerance: float) -> str:
    """Markdown table: one row per scenario and metric (latencies in ms, ± one std error)."""
    lines = [
        f"| scenario | metric | reference | ours | diff | z | within {tolerance:.0%} |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for c in comparisons:
        verdict = "PASS" if abs(c.relative) <= tolerance else "FAIL"
        lines.append(
            f"| {c.scenario} | {c.metric} | {_show(c.metric, c.reference)} | "
            f"{_show(c.metric, c.ours)} | {c.relative:+.2%} | {c.z:+.1f} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison, print the table and the verdict; 0 if every metric is within."""
    args = _parse_args(argv)
    if not args.ref_python.exists():
        sys.exit(f"reference interpreter {args.ref_python} not found; {REF_VENV_HINT}")
    scenarios = _scenarios(args.directory)
    samples = collect(scenarios, args.seeds, args.jobs, args.ref_python)
    comparisons, skipped, errors = compare(samples)
    print(f"{args.seeds} seeds per engine; latencies in ms, mean over seeds ± standard error")
    print(render(comparisons, args.tolerance))
    for reason in skipped:
        print(f"skipped, {reason[:300]}")
    for error in errors:
        print(f"error: {error}")
    if args.json is not None:
        raw = {
            scenario: {engine: vars(by_engine[engine]) for engine in ENGINES}
            for scenario, by_engine in samples.items()
        }
        args.json.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    worst = max(comparisons, key=lambda c: abs(c.relative), default=None)
    passed = worst is not None and not errors and abs(worst.relative) <= args.tolerance
    if worst is not None:
        print(f"largest difference: {worst.scenario} {worst.metric} {worst.relative:+.2%}")
    print(f"target: every metric within {args.tolerance:.0%}: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
