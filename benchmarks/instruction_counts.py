"""Instructions the engine executes per scenario, counted by valgrind's callgrind, side by side
against another revision.

Wall time on a shared machine moves by tens of percent with whatever else runs; an
instruction count does not (the same binary, inputs and environment give the same count, even
with the other cores loaded). So a change to `runtime/` is priced here first:

    python benchmarks/instruction_counts.py --baseline main~3 [--jobs 2] [SCENARIO ...]

Each scenario is run twice per checkout under callgrind: `asyncflow run` (start-up, parsing,
validation, simulation, results) and `asyncflow validate` (start-up, parsing, validation).
Their difference is the simulation and its results: the part `runtime/` owns. The baseline
revision is checked out into a temporary git worktree and run with the same interpreter, so
only the source differs. The ratio printed is ours / baseline; the target for a refactor is
at most 1.10 on AsyncFlow's own examples.

Needs `valgrind` (Debian package `valgrind`). About a minute per scenario and checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ANCHORS = Path(os.environ.get("ASYNCFLOW_ANCHORS", "/work/shared/anchors/asyncflow-examples"))
DEFAULT_SCENARIOS = (
    ANCHORS / "quickstart.yml",
    ANCHORS / "two_servers_lb.yml",
    ANCHORS / "event_inj_lb.yml",
    ROOT / "example" / "retry_storm.yml",
    ROOT / "example" / "fan_out.yml",
)
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


@dataclass(frozen=True)
class Count:
    """Instructions of one scenario in one checkout."""

    total: int
    """`asyncflow run`: start-up to results document."""
    validate: int
    """`asyncflow validate`: start-up, parsing and validation only."""

    @property
    def simulation(self) -> int:
        """What the run adds to validation: building, simulating, summarising."""
        return self.total - self.validate


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path, default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--baseline", help="git revision to compare with (e.g. main~3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="callgrind processes at a time")
    return parser.parse_args(argv)


def _instructions(source: Path, command: list[str]) -> int:
    """Instructions callgrind collects for `python -m asyncflow_backend.cli COMMAND...` run
    on the sources under `source`.

    Raises `RuntimeError` with valgrind's output when no count is printed.
    """
    env = {**os.environ, "PYTHONPATH": str(source / "src"), "PYTHONHASHSEED": "0"}
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "asyncflow_backend.cli",
        *command,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    found = COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count for {command}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count(source: Path, scenario: Path, seed: int) -> Count:
    """Both counts of `scenario` on the checkout at `source`."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "results.json"
        run = ["run", str(scenario), "--seed", str(seed), "-q", "--json", str(out)]
        total = _instructions(source, run)
    return Count(total, _instructions(source, ["validate", str(scenario)]))


def _baseline_checkout(revision: str, into: Path) -> Path:
    path = into / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
        check=True,
        capture_output=True,
    )
    return path


def _print_table(
    scenarios: Sequence[Path], ours: dict[Path, Count], base: dict[Path, Count] | None
) -> None:
    header = f"{'scenario':<28} {'run (M instr)':>14} {'simulation':>12}"
    if base is not None:
        header += f" {'baseline sim':>13} {'ratio':>7}"
    print(header)
    for scenario in scenarios:
        mine = ours[scenario]
        line = f"{scenario.name:<28} {mine.total / 1e6:>14.1f} {mine.simulation / 1e6:>12.1f}"
        if base is not None:
            theirs = base[scenario]
            line += f" {theirs.simulation / 1e6:>13.1f} {mine.simulation / theirs.simulation:>7.3f}"
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    scenarios = [path.resolve() for path in args.scenarios]
    missing = [str(path) for path in scenarios if not path.is_file()]
    if missing:
        print(f"no such scenario: {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        checkouts = {"ours": ROOT}
        if args.baseline:
            checkouts["baseline"] = _baseline_checkout(args.baseline, Path(scratch))
        try:
            jobs = [(name, s) for name in checkouts for s in scenarios]
            with ThreadPoolExecutor(args.jobs) as pool:
                counts = list(pool.map(lambda j: count(checkouts[j[0]], j[1], args.seed), jobs))
        finally:
            if args.baseline:
                remove = ["git", "-C", str(ROOT), "worktree", "remove", "--force"]
                subprocess.run(
                    [*remove, str(checkouts["baseline"])], check=False, capture_output=True
                )
    by_job = dict(zip(jobs, counts, strict=True))
    ours = {s: by_job["ours", s] for s in scenarios}
    base = {s: by_job["baseline", s] for s in scenarios} if args.baseline else None
    _print_table(scenarios, ours, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
