"""Wall time and peak memory of our engine against the reference library, as whole processes.

The quickstart scenario, stretched to a longer horizon, runs through both engines in turn (the
order swaps every repetition, so a slow spell of the machine hits both). Each run is one child
process; `os.wait4` on its pid gives the resource usage of exactly that child, whose
`ru_maxrss` is its peak resident set in KiB. Interpreter start-up and imports are included on
both sides: this is what a user waits for.

    python benchmarks/speed_memory.py [--repetitions 3] [--horizon 1200]

Targets: the reference takes at least 5x our wall time and 3x our peak memory.

A second check runs our engine at the horizon and at 4x the horizon: memory should grow with
the requests in flight, not with the requests completed. The engine keeps one float per
completed request (8 bytes) and one counter per simulated second; the sampled time series grow
with simulated time (8 bytes per sample while running, a list of floats in the results
document at the end), so the check runs with the series switched off, to isolate the cost of a
completed request, and on, to price a sample.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REFERENCE_RUNNER = HERE / "reference_runner.py"
DEFAULT_SCENARIO = Path("/work/shared/anchors/asyncflow-examples/quickstart.yml")
DEFAULT_REF_PYTHON = Path("/work/.refvenv/bin/python")
REF_VENV_HINT = (
    "create it with: python3.12 -m venv .refvenv && .refvenv/bin/pip install asyncflow-sim"
)
WALL_TARGET = 5.0
MEMORY_TARGET = 3.0
GROWTH_FACTOR = 4
OURS_SEED_OFFSET = 1000
KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    """One child process: what it cost and how much work it did."""

    engine: str
    seed: int
    wall_s: float
    engine_s: float
    peak_rss_kib: int
    completed: int
    samples: int = 0


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--horizon", type=int, default=1200, help="simulated seconds")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per engine")
    parser.add_argument("--ref-python", type=Path, default=DEFAULT_REF_PYTHON)
    parser.add_argument("--skip-growth", action="store_true", help="only the side-by-side runs")
    return parser.parse_args(argv)


def stretched_copy(scenario: Path, horizon: int, directory: Path, *, series: bool = True) -> Path:
    """Write `scenario` with a new horizon (and optionally no sampled series) into `directory`."""
    document: dict[str, Any] = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    settings = document.setdefault("sim_settings", {})
    settings["total_simulation_time"] = horizon
    if not series:
        settings["enabled_sample_metrics"] = []
    suffix = "" if series else "-no-series"
    target = directory / f"{scenario.stem}-{horizon}s{suffix}.yml"
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target


def run_child(command: list[str], stdout_path: Path) -> tuple[float, int]:
    """Run `command` to its end; its wall time and peak RSS (KiB), from its own rusage."""
    with stdout_path.open("w") as stdout, stdout_path.with_suffix(".err").open("w") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        detail = stdout_path.with_suffix(".err").read_text(encoding="utf-8").strip()
        raise RuntimeError(f"{command[0]} exited {child.returncode}: {detail[-500:]}")
    return wall, usage.ru_maxrss


def run_reference(ref_python: Path, scenario: Path, seed: int, scratch: Path) -> Measurement:
    """One whole reference process on `scenario`."""
    out = scratch / f"reference-{seed}.json"
    command = [str(ref_python), str(REFERENCE_RUNNER), str(scenario), "--seed", str(seed)]
    wall, peak = run_child(command, out)
    summary = json.loads(out.read_text(encoding="utf-8"))
    engine_s = summary["meta"]["wall_seconds"]
    return Measurement("reference", seed, wall, engine_s, peak, summary["requests"]["completed"])


def run_ours(scenario: Path, seed: int, scratch: Path) -> Measurement:
    """One whole `asyncflow run --json` process on `scenario`."""
    results = scratch / f"ours-{scenario.stem}-{seed}.json"
    command = [sys.executable, "-m", "asyncflow_backend.cli", "run", str(scenario)]
    command += ["--seed", str(seed), "--json", str(results), "--quiet"]
    wall, peak = run_child(command, scratch / f"ours-{seed}.out")
    document = json.loads(results.read_text(encoding="utf-8"))
    series = document["time_series"]["series"].values()
    return Measurement(
        "ours",
        seed,
        wall,
        document["meta"]["wall_seconds"],
        peak,
        document["requests"]["completed"],
        samples=sum(len(values) for by_id in series for values in by_id.values()),
    )


def side_by_side(
    ref_python: Path, scenario: Path, repetitions: int, scratch: Path
) -> list[Measurement]:
    """Alternate the engines, swapping which goes first at every repetition."""
    measurements: list[Measurement] = []
    for rep in range(1, repetitions + 1):
        reference = partial(run_reference, ref_python, scenario, rep, scratch)
        ours = partial(run_ours, scenario, rep + OURS_SEED_OFFSET, scratch)
        for run in (reference, ours) if rep % 2 else (ours, reference):
            m = run()
            measurements.append(m)
            print(
                f"  rep {rep} {m.engine:<9} {m.wall_s:7.2f} s ({m.engine_s:6.2f} s in run) "
                f"{m.peak_rss_kib / KIB:7.1f} MiB {m.completed:>9,} completed",
                file=sys.stderr,
            )
    return measurements


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def report_side_by_side(measurements: list[Measurement], horizon: int) -> bool:
    """Print the per-run table, the medians and the ratios; True if both targets are met."""
    print(f"quickstart at {horizon} s simulated, whole processes, order alternating\n")
    print("| engine | seed | wall s | of which in run() | peak RSS MiB | completed |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in measurements:
        print(
            f"| {m.engine} | {m.seed} | {m.wall_s:.2f} | {m.engine_s:.2f} | "
            f"{m.peak_rss_kib / KIB:.1f} | {m.completed:,} |"
        )
    medians = {}
    for engine in ("reference", "ours"):
        mine = [m for m in measurements if m.engine == engine]
        medians[engine] = (
            _median([m.wall_s for m in mine]),
            _median([m.peak_rss_kib / KIB for m in mine]),
            _median([m.completed for m in mine]),
            _median([m.engine_s for m in mine]),
        )
        wall, rss, completed, engine_s = medians[engine]
        print(
            f"| **{engine} median** | | {wall:.2f} | {engine_s:.2f} | {rss:.1f} | "
            f"{completed:,.0f} |"
        )
    wall_ratio = medians["reference"][0] / medians["ours"][0]
    memory_ratio = medians["reference"][1] / medians["ours"][1]
    wall_ok, memory_ok = wall_ratio >= WALL_TARGET, memory_ratio >= MEMORY_TARGET
    print()
    print(
        f"wall time   reference/ours = {wall_ratio:.1f}x "
        f"(target >= {WALL_TARGET:g}x: {'PASS' if wall_ok else 'FAIL'})"
    )
    print(
        f"peak memory reference/ours = {memory_ratio:.1f}x "
        f"(target >= {MEMORY_TARGET:g}x: {'PASS' if memory_ok else 'FAIL'})"
    )
    return wall_ok and memory_ok


def growth(scenario: Path, horizon: int, scratch: Path) -> None:
    """Print our peak RSS at `horizon` and at GROWTH_FACTOR x `horizon`, with and without series.

    With the series off, the extra memory of the long run is what the extra completed requests
    cost. With the series on, the difference between the two cases is what the extra samples
    cost (samples grow with simulated time, whatever the number of requests).
    """
    long_horizon = horizon * GROWTH_FACTOR
    print(f"\nour peak memory at {horizon} s and {long_horizon} s simulated (same seed)\n")
    print("| time series | horizon s | completed | samples | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    extra: dict[bool, tuple[int, int, int]] = {}
    for series in (False, True):
        short, long = (
            run_ours(stretched_copy(scenario, h, scratch, series=series), OURS_SEED_OFFSET, scratch)
            for h in (horizon, long_horizon)
        )
        label = "on" if series else "off"
        for h, m in ((horizon, short), (long_horizon, long)):
            print(
                f"| {label} | {h} | {m.completed:,} | {m.samples:,} | {m.peak_rss_kib / KIB:.1f} |"
            )
        extra[series] = (
            (long.peak_rss_kib - short.peak_rss_kib) * KIB,
            long.completed - short.completed,
            long.samples - short.samples,
        )
    off_bytes, off_requests, _ = extra[False]
    on_bytes, _, on_samples = extra[True]
    print()
    print(
        f"series off: +{off_bytes / MIB:.1f} MiB for +{off_requests:,} completed requests "
        f"= {off_bytes / off_requests:.1f} bytes per extra completed request"
    )
    print(
        f"series on:  +{(on_bytes - off_bytes) / MIB:.1f} MiB more for +{on_samples:,} samples "
        f"= {(on_bytes - off_bytes) / on_samples:.1f} bytes per extra sample"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the side-by-side comparison and the growth check; 0 if both targets are met."""
    args = _parse_args(argv)
    if not args.ref_python.exists():
        sys.exit(f"reference interpreter {args.ref_python} not found; {REF_VENV_HINT}")
    with tempfile.TemporaryDirectory(prefix="asyncflow-bench-") as name:
        scratch = Path(name)
        stretched = stretched_copy(args.scenario, args.horizon, scratch)
        measurements = side_by_side(args.ref_python, stretched, args.repetitions, scratch)
        passed = report_side_by_side(measurements, args.horizon)
        if not args.skip_growth:
            growth(args.scenario, args.horizon, scratch)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
