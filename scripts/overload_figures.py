"""The retry-storm figure of docs/overload.md: goodput and offered attempts per second of
`example/retry_storm.yml` and `example/retry_storm_budget.yml`, at a fixed seed.

    python scripts/overload_figures.py [--figures docs/figures] [--seed 4]

Prints, for each run, the mean goodput and attempts per second before, during and after
the slowdown (the table of docs/overload.md).
"""

import argparse
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg

from asyncflow_backend.plots.overload import attempts_series, goodput_series, overload_figure
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import load_scenario_file

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    "aggressive retries": ROOT / "example" / "retry_storm.yml",
    "with a retry budget": ROOT / "example" / "retry_storm_budget.yml",
}
SLOWDOWN = (60.0, 90.0)
WINDOWS = ((0, 60), (60, 90), (90, 120), (120, 180), (180, 300))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    runs = [
        (label, run_scenario(load_scenario_file(path), seed=args.seed))
        for label, path in RUNS.items()
    ]
    print("| run | window s | goodput / s | attempts / s |")
    print("|---|---|---:|---:|")
    for label, results in runs:
        goodput, attempts = goodput_series(results), attempts_series(results)
        for start, end in WINDOWS:
            print(
                f"| {label} | {start}-{end} | {goodput[start:end].mean():.1f} "
                f"| {attempts[start:end].mean():.1f} |"
            )
    figure = overload_figure(runs, SLOWDOWN)
    args.figures.mkdir(parents=True, exist_ok=True)
    target = args.figures / "retry_storm.png"
    FigureCanvasAgg(figure).print_png(str(target))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
