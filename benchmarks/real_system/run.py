"""Measure a real topology, calibrate the engine at one low load, and compare at higher loads.

    python benchmarks/real_system/run.py --topology NAME [--loads R0 R1 ...] [--repeats 3]
        [--duration S] [--server-cores 1] [--loop-cost [--loop-cost-load R]] [--out DIR]

1. Start the topology's services pinned to the server cores (this process and the load
   generator take the other cores); print the cores and the load average.
2. Time an idle ``/ping`` round trip; run the lowest load ``--repeats`` times.
3. Calibrate a scenario from those low-load runs only; print where each number came from.
   With ``--loop-cost`` the framework's overhead becomes each server's ``event_loop`` (a cost
   per loop wake-up and per callback) instead of a fixed parsing step; ``--loop-cost-load R``
   also runs the load R right after the low one and splits the two costs by the line through
   both loads' runs (R is then predicted and compared like the others).
4. Run every other load ``--repeats`` times (repeats interleaved across loads), printing each
   run's percentiles, CPU per request, lateness and the load average.
5. Predict every load with the engine and print the table (`report`).

Loads are ``--loads`` (req/s, the first is the calibration load) or, by default,
``--low-load`` then the rates at which the calibrated scenario's busiest resource reaches each
of ``--utilisations``. Writes into ``--out``: ``scenario.yml`` (calibrated, at the low load),
``calibration.txt``, ``runs.csv`` (one row per run), ``raw.csv`` (one row per request),
``table.csv`` and ``chart.png`` (with ``--loop-cost`` also ``table-fixed.csv`` and
``chart-fixed.png``: the same runs predicted with the overhead as a fixed cost per
request). Exit status 0; 3 when a load was refused (the load generator fell behind its
schedule, or requests failed); 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml

from benchmarks.real_system.calibrate import Calibration, Measurements, calibrate, visits
from benchmarks.real_system.load import LatenessPolicy
from benchmarks.real_system.loopcost import WakeupCost, fit_wakeup_cost
from benchmarks.real_system.measure import Measured, idle_round_trip, measure_run, warm_up
from benchmarks.real_system.pinning import load_average, plan_cores
from benchmarks.real_system.predict import DEFAULT_REQUESTS, predict
from benchmarks.real_system.report import (
    RealRun,
    format_table,
    plot,
    table_rows,
    write_table,
)
from benchmarks.real_system.services import Deployment, deploy
from benchmarks.real_system.topologies import TOPOLOGIES, topology

DEFAULT_UTILISATIONS = (0.3, 0.5, 0.7, 0.8, 0.85, 0.9)
REFUSED_STATUS = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", required=True, choices=sorted(TOPOLOGIES))
    parser.add_argument("--loads", type=float, nargs="+", help="req/s; the first calibrates")
    parser.add_argument("--low-load", type=float, default=20.0, help="calibration load, req/s")
    parser.add_argument("--utilisations", type=float, nargs="+", default=DEFAULT_UTILISATIONS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds left out of each run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-cores", type=int, default=1)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="per prediction")
    parser.add_argument("--jobs", type=int, default=2, help="engine runs at a time")
    parser.add_argument("--max-lateness-p99-ms", type=float, default=2.0)
    parser.add_argument("--late-ms", type=float, default=5.0)
    parser.add_argument("--max-share-late", type=float, default=0.01)
    parser.add_argument("--loop-cost", action="store_true", help="calibrate event_loop")
    parser.add_argument("--loop-cost-load", type=float, help="req/s; a second load for the split")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.loop_cost_load is not None:
        if args.loop_cost_load <= 0:
            parser.error("--loop-cost-load must be > 0 req/s")
        args.loop_cost = True
    if args.repeats < 1 or args.duration <= args.warmup or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --duration longer than --warmup (>= 0)")
    if args.loads and any(load <= 0 for load in args.loads):
        parser.error("--loads must be > 0 req/s")
    if any(not 0 < u < 1 for u in args.utilisations):
        parser.error("--utilisations must lie strictly between 0 and 1")
    return args


def _runs_csv(measured: Sequence[Measured], real: Sequence[RealRun], path: Path) -> None:
    names = sorted({name for m in measured for name in m.cpu_s})
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["rate_per_s", "repeat", "answered", "p50_s", "p95_s", "p99_s", "lateness_p99_s",
             "kept_schedule", "load_average", *[f"cpu_per_request_s:{n}" for n in names],
             *[f"wakeups_per_request:{n}" for n in names]]
        )  # fmt: skip
        for m, r in zip(measured, real, strict=True):
            answered = len(m.answered())
            cpu = [m.cpu_s.get(n, 0.0) / answered if answered else "" for n in names]
            wakeups = [m.wakeups.get(n, 0) / answered if answered else "" for n in names]
            percentiles = [
                r.percentile(s) if r.latencies_s.size else "" for s in ("p50", "p95", "p99")
            ]
            writer.writerow(
                [m.rate_per_s, m.repeat, answered, *percentiles, r.verdict.p99_s,
                 r.verdict.kept, m.load_average, *cpu, *wakeups]
            )  # fmt: skip


def _raw_csv(measured: Sequence[Measured], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "rate_per_s",
                "repeat",
                "scheduled_s",
                "lateness_s",
                "latency_s",
                "status",
                "server_s",
                "parts",
            ]
        )
        for m in measured:
            for r in m.records:
                writer.writerow([m.rate_per_s, m.repeat, r.scheduled_s, r.lateness_s, r.latency_s,
                                 r.status, r.server_s, r.parts])  # fmt: skip


def _describe(run: Measured, real: RealRun) -> str:
    answered = len(run.answered())
    cpu = (
        ", ".join(
            f"{name} {seconds / answered * 1e3:.3f} ms"
            f" ({run.wakeups.get(name, 0) / answered:.2f} wake-ups)"
            for name, seconds in run.cpu_s.items()
        )
        if answered
        else "—"
    )
    percentiles = (
        " ".join(f"{s} {real.percentile(s) * 1e3:.2f}" for s in ("p50", "p95", "p99"))
        if real.latencies_s.size
        else "no answers"
    )
    verdict = real.refusal() or "ok"
    return (
        f"  {run.rate_per_s:8.1f} req/s #{run.repeat}: {percentiles} ms; CPU/request {cpu};"
        f" lateness p99 {real.verdict.p99_s * 1e3:.2f} ms; load average {run.load_average};"
        f" {verdict}"
    )


def _wakeup_fits(
    measured: Sequence[Measured], min_runs: int = 3
) -> dict[str, WakeupCost | ValueError]:
    """Per server process, the line of CPU per visit against wake-ups per visit over the runs
    (or why there is none)."""
    fits: dict[str, WakeupCost | ValueError] = {}
    for name in measured[0].cpu_s:
        cpu, wakeups = [], []
        for m in measured:
            count = len(m.answered()) if name == "proxy" else visits(m.parts(), name)
            if count:
                cpu.append(m.cpu_s[name] / count)
                wakeups.append(m.wakeups.get(name, 0) / count)
        try:
            fits[name] = fit_wakeup_cost(cpu, wakeups, min_runs)
        except ValueError as error:
            fits[name] = error
    return fits


def _wakeup_costs(measured: Sequence[Measured]) -> list[str]:
    """Per server process, CPU per visit against wake-ups per visit over every run."""
    return [
        f"{name}: {fit.describe()}" if isinstance(fit, WakeupCost) else f"{name}: no fit ({fit})"
        for name, fit in _wakeup_fits(measured).items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spec = topology(args.topology)
    try:
        plan = plan_cores(server_cores=args.server_cores)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, plan.load_cores)
    out = args.out or Path(__file__).resolve().parent / "results" / spec.name
    out.mkdir(parents=True, exist_ok=True)
    policy = LatenessPolicy(args.max_lateness_p99_ms / 1e3, args.late_ms / 1e3, args.max_share_late)
    low = args.loads[0] if args.loads else args.low_load

    print(f"topology {spec.name}: {spec.description}")
    print(f"{plan.describe()}; load average {load_average()}")
    measured: list[Measured] = []
    real: list[RealRun] = []

    def run(rate: float, repeat: int, deployment: Deployment) -> None:
        seed = args.seed * 1_000 + repeat
        m = measure_run(
            deployment, plan, rate, args.duration, seed, out / f"run-{rate:g}-{repeat}.csv", repeat
        )
        r = m.real_run(args.warmup, policy)
        measured.append(m)
        real.append(r)
        print(_describe(m, r), flush=True)

    with deploy(spec, plan) as deployment:
        print(f"cores read back: {deployment.cores()}")
        warm_up(deployment)
        rtt, ping_cpu, ping_wakeups = idle_round_trip(deployment, plan, out / "ping.csv")
        print(
            f"idle /ping: round trip {rtt * 1e3:.3f} ms, server CPU {ping_cpu * 1e3:.3f} ms,"
            f" {ping_wakeups:.2f} wake-ups"
        )
        print(f"calibration load {low:g} req/s, {args.repeats} x {args.duration:g} s")
        for repeat in range(args.repeats):
            run(low, repeat, deployment)
        low_runs = measured[:]
        fits: dict[str, WakeupCost] = {}
        if args.loop_cost_load is not None:
            print(f"second load for the event loop's costs: {args.loop_cost_load:g} req/s")
            for repeat in range(args.repeats):
                run(args.loop_cost_load, repeat, deployment)
            found = _wakeup_fits(measured, min_runs=2)
            fits = {n: fit for n, fit in found.items() if isinstance(fit, WakeupCost)}
            for name, fit in found.items():
                if not isinstance(fit, WakeupCost):
                    print(f"  {name}: no split of its costs ({fit}); all per wake-up")
        low_measurements = Measurements(
            topology=spec,
            parts=[row for m in low_runs for row in m.parts()],
            cpu_s={n: sum(m.cpu_s[n] for m in low_runs) for n in low_runs[0].cpu_s},
            ping_rtt_s=rtt,
            ping_cpu_s=ping_cpu,
            server_cores=len(plan.server_cores),
            ping_wakeups=ping_wakeups,
            wakeups={
                n: float(sum(m.wakeups.get(n, 0) for m in low_runs)) for n in low_runs[0].cpu_s
            },
        )
        calibration: Calibration = calibrate(low_measurements, loop_cost=args.loop_cost, fits=fits)
        # With the event loop's cost, the same runs also calibrate the fixed per-request
        # overhead, so the two models are held against the same real runs.
        fixed = calibrate(low_measurements) if args.loop_cost else None
        print("calibration:\n  " + "\n  ".join(calibration.notes))
        rates = (
            list(args.loads[1:])
            if args.loads
            else [round(calibration.rate_at(u), 1) for u in args.utilisations]
        )
        second = [] if args.loop_cost_load is None else [args.loop_cost_load]
        rates = [rate for rate in rates if rate not in second]
        print(f"loads: {', '.join(f'{r:g}' for r in rates)} req/s")
        for repeat in range(args.repeats):
            for rate in rates:
                run(rate, repeat, deployment)
        rates = sorted([*rates, *second])
        print(f"load average after the runs: {load_average()}")
    print("event-loop costs over every run (a diagnostic):")
    print("  " + "\n  ".join(_wakeup_costs(measured)))

    all_rates = [low, *rates]
    (out / "scenario.yml").write_text(
        yaml.safe_dump(calibration.scenario(low, 600.0), sort_keys=False)
    )
    (out / "calibration.txt").write_text("\n".join(calibration.notes) + "\n")
    utilisation = {r: calibration.utilisation(r)[0] for r in all_rates}
    models = [("event_loop" if args.loop_cost else "fixed", calibration)]
    if fixed is not None:
        models.append(("fixed", fixed))
    for label, model in models:
        predictions = predict(
            model, all_rates, seed=args.seed, requests=args.requests, jobs=args.jobs
        )
        rows = table_rows(real, predictions, utilisation)
        print(f"model: {label} overhead")
        print(format_table(rows))
        suffix = "" if label == models[0][0] else f"-{label}"
        write_table(rows, out / f"table{suffix}.csv")
        plot(rows, out / f"chart{suffix}.png", f"{spec.name}: predicted ({label}) vs real")
    _runs_csv(measured, real, out / "runs.csv")
    _raw_csv(measured, out / "raw.csv")
    print(f"written to {out}")
    refused = any(str(row["status"]).startswith("refused") for row in rows)
    return REFUSED_STATUS if refused else 0


if __name__ == "__main__":
    sys.exit(main())
