"""Run one scenario through the reference library asyncflow-sim and print a JSON summary.

This file runs under the reference's own interpreter (Python >= 3.12 with `asyncflow-sim`
installed), never under ours; the benchmarks launch it as a child process:

    .refvenv/bin/python benchmarks/reference_runner.py SCENARIO.yml [--seed N] [--horizon T]

The summary has the shape of the parts of our results document that can be compared:
`requests` (generated, completed), `latency` in seconds, `throughput` (mean and completions
in each second), the mean of every sampled series the reference kept
(`sampled_means[metric][component]`) and `meta`.

Seeding: the reference draws all its randomness from one numpy Generator that its runner
creates unseeded; replacing it before `run()` makes a run reproducible.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy
import yaml
from asyncflow import SimulationRunner
from asyncflow.schemas.payload import SimulationPayload
from pydantic import ValidationError

INVALID_INPUT = 2


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path, help="AsyncFlow YAML scenario")
    parser.add_argument("--seed", type=int, default=None, help="seed of the reference's RNG")
    parser.add_argument(
        "--horizon", type=float, default=None, help="replace total_simulation_time (seconds)"
    )
    return parser.parse_args(argv)


def _load_payload(path: Path, horizon: float | None) -> SimulationPayload:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if horizon is not None:
        document.setdefault("sim_settings", {})["total_simulation_time"] = horizon
    return SimulationPayload.model_validate(document)


def _generated_count(runner: SimulationRunner) -> int | None:
    # The reference exposes no public count of generated requests; its generators keep one.
    generators = getattr(runner, "_rqs_runtime", {})
    counts = [getattr(generator, "id_counter", None) for generator in generators.values()]
    if not counts or any(count is None for count in counts):
        return None
    return int(sum(counts))


def _latency_summary(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return dict.fromkeys(("mean", "std", "min", "p50", "p90", "p95", "p99", "max"))
    values = np.asarray(latencies, dtype=float)
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(values.max()),
    }


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def summarise(path: Path, seed: int | None, horizon: float | None) -> dict[str, Any]:
    """Run the reference on `path` and return the JSON-ready summary."""
    payload = _load_payload(path, horizon)
    runner = SimulationRunner(env=simpy.Environment(), simulation_input=payload)
    if seed is not None:
        runner.rng = np.random.default_rng(seed)

    started = time.perf_counter()
    analyzer = runner.run()
    stats = analyzer.get_latency_stats()
    wall_seconds = time.perf_counter() - started

    latencies = analyzer.latencies or []
    _, per_second = analyzer.get_throughput_series()
    sampled = analyzer.get_sampled_metrics()
    return {
        "scenario": str(path),
        "requests": {
            "generated": _generated_count(runner),
            "completed": int(stats.get("total_requests", 0)),
        },
        "latency": {"count": len(latencies), **_latency_summary(latencies)},
        "throughput": {
            "mean_rps": _mean_or_none(per_second) or 0.0,
            "per_second": [round(count) for count in per_second],
        },
        "sampled_means": {
            metric: {component: _mean_or_none(series) for component, series in by_id.items()}
            for metric, by_id in sampled.items()
        },
        "meta": {
            "seed": seed,
            "simulated_seconds": payload.sim_settings.total_simulation_time,
            "wall_seconds": wall_seconds,
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Print the summary of one reference run on stdout; exit 2 if the reference rejects it."""
    args = _parse_args(argv)
    try:
        summary = summarise(args.scenario, args.seed, args.horizon)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        print(f"rejected by asyncflow-sim: {problems}", file=sys.stderr)
        sys.exit(INVALID_INPUT)
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
