"""Validation of the engine against queueing theory: the table and figures of docs/validation.md.

Runs the queueing models of the statistical tests (tests/statistical/queue_models.py)
longer and over a range of utilisations, prints a Markdown table of theory
against simulation (mean +- 95% batch-means confidence interval, relative
error, and the difference in standard errors), and draws the figures:

    python scripts/validation_figures.py [--figures docs/figures] [--jobs 2]

Every run has a fixed seed, so the output is the same on every machine.
"""

import argparse
import math
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "statistical"))

from queue_models import (  # noqa: E402
    BalancedPair,
    Run,
    estimate,
    exponential,
    simulate,
    station,
    station_response_times,
)

from asyncflow_backend.metrics import theory  # noqa: E402
from asyncflow_backend.metrics.theory import Estimate  # noqa: E402
from asyncflow_backend.schemas.random_variables import RVConfig  # noqa: E402

MEAN_SERVICE_S = 0.01
SERVICE_RATE = 1 / MEAN_SERVICE_S
Z95 = 1.96
TABLE_ARRIVALS = 600_000
SWEEP_UTILISATIONS = (0.3, 0.5, 0.7, 0.8, 0.9)
SWEEP_ARRIVALS = 60_000
"""Requests at utilisation 0; a sweep point at utilisation rho runs this / sqrt(1 - rho)."""

SERVICES: dict[str, dict[str, Any] | float] = {
    "deterministic": MEAN_SERVICE_S,
    "uniform [0, 2 E[S]]": {"mean": MEAN_SERVICE_S, "distribution": "uniform"},
    "exponential": exponential(MEAN_SERVICE_S),
    "log-normal, cs2 = 2": {
        "mean": MEAN_SERVICE_S,
        "distribution": "log_normal",
        "variance": 2 * MEAN_SERVICE_S**2,
    },
}


def service_moments(service: dict[str, Any] | float) -> theory.Moments:
    spec = service if isinstance(service, float) else RVConfig.model_validate(service)
    return theory.duration_moments(spec)


@dataclass(frozen=True)
class Row:
    """One line of the validation table."""

    model: str
    parameters: str
    quantity: str
    exact: float
    simulated: Estimate
    unit: str = "ms"

    def markdown(self) -> str:
        scale = 1000.0 if self.unit == "ms" else 1.0
        half_width = Z95 * self.simulated.standard_error * scale
        z = (self.simulated.mean - self.exact) / self.simulated.standard_error
        return (
            f"| {self.model} | {self.parameters} | {self.quantity} | "
            f"{self.exact * scale:.3f} | {self.simulated.mean * scale:.3f} +- {half_width:.3f} | "
            f"{self.simulated.relative_error(self.exact):+.2%} | {z:+.1f} |"
        )


TABLE_HEADER = (
    "| Model | Parameters | Quantity | Theory | Simulation (95% CI) | Relative error | z |\n"
    "| --- | --- | --- | ---: | ---: | ---: | ---: |"
)


def horizon(arrivals: int, arrival_rate: float) -> float:
    return arrivals / arrival_rate


# Runs are picklable top-level functions so that they can go to worker processes.


def station_rows(
    model: str, utilisation: float, service: dict[str, Any] | float, cores: int, seed: int
) -> tuple[list[Row], np.ndarray]:
    """Mean response time and ready queue of one station, and its response times."""
    arrival_rate = utilisation * cores * SERVICE_RATE
    moments = service_moments(service)
    if isinstance(service, dict) and service.get("distribution") == "exponential":
        exact = theory.mmc(arrival_rate, SERVICE_RATE, cores)
    else:
        exact = theory.mg1(arrival_rate, moments.mean, moments.second)
    run = simulate(
        station(
            arrival_rate, service, cores=cores, horizon_s=horizon(TABLE_ARRIVALS, arrival_rate)
        ),
        seed,
    )
    parameters = f"lambda = {arrival_rate:g}/s, E[S] = 10 ms, c = {cores}, rho = {utilisation:g}"
    if moments.scv not in (0.0, 1.0):
        parameters += f", cs2 = {moments.scv:.3g}"
    response = station_response_times(run)
    rows = [Row(model, parameters, "W", exact.response, estimate(response))]
    rows.append(
        Row(
            model,
            parameters,
            "Lq (ready queue)",
            exact.queue_length,
            estimate(run.series("ready_queue_len", "srv")),
            unit="",
        )
    )
    return rows, response


def io_rows(seed: int) -> list[Row]:
    arrival_rate, io_s = 70.0, 0.05
    run = simulate(
        station(
            arrival_rate,
            exponential(MEAN_SERVICE_S),
            io_time=exponential(io_s),
            horizon_s=horizon(TABLE_ARRIVALS // 2, arrival_rate),
        ),
        seed,
    )
    model = "M/M/1 + I/O delay"
    parameters = "lambda = 70/s, E[S] = 10 ms, E[io] = 50 ms (exponential)"
    cpu = theory.mm1(arrival_rate, SERVICE_RATE)
    return [
        Row(model, parameters, "W", cpu.response + io_s, estimate(station_response_times(run))),
        Row(
            model,
            parameters,
            "requests in I/O wait",
            arrival_rate * io_s,
            estimate(run.series("event_loop_io_sleep", "srv")),
            unit="",
        ),
    ]


def balanced_rows(seed: int) -> tuple[list[Row], dict[str, tuple[float, float]]]:
    """Little's law on the balanced pair, and the occupancy of each component."""
    system = BalancedPair()
    run: Run = simulate(system.scenario(horizon(TABLE_ARRIVALS, system.arrival_rate)), seed)
    results = run.results
    series = results.time_series.series
    counts = ("ready_queue_len", "event_loop_io_sleep", "edge_concurrent_connection")
    waiting_or_travelling = np.sum(
        [v for metric in counts for v in series[metric].values()], axis=0
    )
    running = sum(results.servers[s].cpu_utilisation for s in system.servers)
    sampled = estimate(waiting_or_travelling)
    in_system = Estimate(sampled.mean + running, sampled.standard_error, sampled.batches)
    model = "LB + 2 x E2/M/1"
    parameters = "lambda = 150/s, round robin, E[S] = 10 ms, links 1-5 ms"
    measured_little = results.throughput.mean_rps * float(run.latencies.mean())
    share = system.arrival_rate / len(system.servers)

    occupancy: dict[str, tuple[float, float]] = {}
    for edge_id, (rate, latency) in system.links.items():
        observed = estimate(run.series("edge_concurrent_connection", edge_id)).mean
        occupancy[f"link {edge_id}"] = (rate * latency, observed)
    for server_id in system.servers:
        occupancy[f"{server_id} ready queue"] = (
            system.per_server.queue_length,
            estimate(run.series("ready_queue_len", server_id)).mean,
        )
        occupancy[f"{server_id} on the core"] = (
            system.per_server.utilisation,
            results.servers[server_id].cpu_utilisation,
        )
        occupancy[f"{server_id} in I/O"] = (
            share * system.io_wait_s,
            estimate(run.series("event_loop_io_sleep", server_id)).mean,
        )
    return [
        Row(model, parameters, "W (end to end)", system.response, estimate(run.latencies)),
        Row(
            model,
            parameters,
            "L (sampled) vs lambda W",
            system.arrival_rate * system.response,
            in_system,
            unit="",
        ),
        Row(
            model,
            parameters,
            "L (sampled) vs X x mean latency",
            measured_little,
            in_system,
            unit="",
        ),
        Row(
            model,
            parameters,
            "Lq of srv-1",
            system.per_server.queue_length,
            estimate(run.series("ready_queue_len", "srv-1")),
            unit="",
        ),
    ], occupancy


def sweep_point(service_name: str, cores: int, utilisation: float, seed: int) -> Estimate:
    """The simulated mean response time of one point of a utilisation sweep."""
    service = SERVICES[service_name]
    arrival_rate = utilisation * cores * SERVICE_RATE
    arrivals = int(SWEEP_ARRIVALS / math.sqrt(1 - utilisation))
    run = simulate(
        station(arrival_rate, service, cores=cores, horizon_s=horizon(arrivals, arrival_rate)),
        seed,
    )
    return estimate(station_response_times(run))


def sweep_theory(service_name: str, cores: int, utilisation: float) -> float:
    arrival_rate = utilisation * cores * SERVICE_RATE
    if service_name == "exponential":
        return theory.mmc(arrival_rate, SERVICE_RATE, cores).response
    moments = service_moments(SERVICES[service_name])
    return theory.mg1(arrival_rate, moments.mean, moments.second).response


def draw_sweep(
    ax: Axes,
    curves: Iterable[tuple[str, Callable[[float], float], list[Estimate]]],
    title: str,
) -> None:
    grid = np.linspace(0.02, 0.93, 200)
    for index, (label, exact, points) in enumerate(curves):
        color = f"C{index}"
        ax.plot(grid, [exact(u) * 1000 for u in grid], color=color, lw=1.5, label=f"{label}")
        ax.errorbar(
            SWEEP_UTILISATIONS,
            [p.mean * 1000 for p in points],
            yerr=[Z95 * p.standard_error * 1000 for p in points],
            fmt="o",
            color=color,
            ms=5,
            capsize=3,
        )
    ax.set_yscale("log")
    ax.set_xlabel("utilisation per core, rho")
    ax.set_ylabel("mean response time (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="lines: theory; dots: simulation (95% CI)", fontsize=8, title_fontsize=8)


def save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def figure_mmc(points: dict[tuple[str, int, float], Estimate], path: Path) -> None:
    fig = Figure(figsize=(7, 4.5))
    curves = [
        (
            f"M/M/{c}",
            (lambda u, c=c: sweep_theory("exponential", c, u)),
            [points["exponential", c, u] for u in SWEEP_UTILISATIONS],
        )
        for c in (1, 2, 4)
    ]
    draw_sweep(fig.add_subplot(), curves, "M/M/c: Erlang C against the engine (E[S] = 10 ms)")
    save(fig, path)


def figure_mg1(points: dict[tuple[str, int, float], Estimate], path: Path) -> None:
    fig = Figure(figsize=(7, 4.5))
    curves = [
        (
            f"M/G/1, {name}",
            (lambda u, name=name: sweep_theory(name, 1, u)),
            [points[name, 1, u] for u in SWEEP_UTILISATIONS],
        )
        for name in SERVICES
    ]
    draw_sweep(
        fig.add_subplot(), curves, "M/G/1: Pollaczek-Khinchine against the engine (E[S] = 10 ms)"
    )
    save(fig, path)


def figure_mm1_distribution(response: np.ndarray, utilisation: float, path: Path) -> None:
    """Histogram and survival function of M/M/1 response times against Exp(mu - lambda)."""
    arrival_rate = utilisation * SERVICE_RATE
    rate = SERVICE_RATE - arrival_rate
    fig = Figure(figsize=(10, 4))
    density, survival = fig.subplots(1, 2)
    t = np.linspace(0, response.max(), 300)
    shown = np.quantile(response, 0.999) * 1000
    density.hist(response * 1000, bins=120, range=(0, shown), density=True, alpha=0.6)
    density.plot(t * 1000, rate * np.exp(-rate * t) / 1000, color="C3", label="Exp(mu - lambda)")
    density.set_xlim(0, shown)
    density.set_xlabel("response time (ms)")
    density.set_ylabel("density (1/ms)")
    density.set_title(f"M/M/1, rho = {utilisation:g}: {response.size:,} requests")
    density.legend()

    ordered = np.sort(response)
    empirical = 1.0 - np.arange(1, ordered.size + 1) / ordered.size
    step = max(1, ordered.size // 2000)
    survival.semilogy(ordered[::step] * 1000, empirical[::step], label="simulation", lw=2)
    theoretical = 1 - theory.mm1_response_cdf(t, arrival_rate, SERVICE_RATE)
    survival.semilogy(
        t * 1000, theoretical, "--", color="C3", label="theory, exp(-(mu - lambda) t)"
    )
    survival.set_ylim(1e-4, 1)
    survival.set_xlabel("response time t (ms)")
    survival.set_ylabel("P(response time > t)")
    survival.set_title("Survival function (log scale)")
    survival.grid(True, which="both", alpha=0.3)
    survival.legend()
    save(fig, path)


def figure_little(occupancy: dict[str, tuple[float, float]], path: Path) -> None:
    fig = Figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    names = list(occupancy)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [occupancy[n][0] for n in names], 0.4, label="theory (lambda x mean time)")
    ax.bar(x + 0.2, [occupancy[n][1] for n in names], 0.4, label="simulation (time average)")
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("mean number of requests")
    ax.set_title("Little's law, component by component (LB + 2 servers, lambda = 150/s)")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    args.figures.mkdir(parents=True, exist_ok=True)

    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        stations = [
            pool.submit(station_rows, "M/M/1", 0.5, SERVICES["exponential"], 1, 11),
            pool.submit(station_rows, "M/M/1", 0.8, SERVICES["exponential"], 1, 12),
            pool.submit(station_rows, "M/M/2", 0.8, SERVICES["exponential"], 2, 13),
            pool.submit(station_rows, "M/M/4", 0.8, SERVICES["exponential"], 4, 14),
            pool.submit(station_rows, "M/D/1", 0.8, SERVICES["deterministic"], 1, 15),
            pool.submit(station_rows, "M/G/1 uniform", 0.8, SERVICES["uniform [0, 2 E[S]]"], 1, 16),
            pool.submit(
                station_rows, "M/G/1 log-normal", 0.7, SERVICES["log-normal, cs2 = 2"], 1, 17
            ),
        ]
        io = pool.submit(io_rows, 18)
        balanced = pool.submit(balanced_rows, 19)
        sweep_keys = [
            (name, cores, u)
            for name, cores in [("exponential", 1), ("exponential", 2), ("exponential", 4)]
            + [(name, 1) for name in SERVICES if name != "exponential"]
            for u in SWEEP_UTILISATIONS
        ]
        sweep = {
            key: pool.submit(sweep_point, *key, seed=100 + i) for i, key in enumerate(sweep_keys)
        }

        rows: list[Row] = []
        for future in stations:
            rows += future.result()[0]
        rows += io.result()
        balanced_table, occupancy = balanced.result()
        rows += balanced_table
        points = {key: future.result() for key, future in sweep.items()}
        mm1_response = stations[1].result()[1]

    print(TABLE_HEADER)
    for row in rows:
        print(row.markdown())
    print()
    figure_mmc(points, args.figures / "mmc_response_vs_utilisation.png")
    figure_mg1(points, args.figures / "mg1_response_vs_utilisation.png")
    figure_mm1_distribution(mm1_response, 0.8, args.figures / "mm1_response_distribution.png")
    figure_little(occupancy, args.figures / "littles_law_components.png")
    errors = {key: (p.mean - sweep_theory(*key)) / p.standard_error for key, p in points.items()}
    worst = max(errors, key=lambda key: abs(errors[key]))
    print(
        f"sweep: {len(points)} points; largest difference {errors[worst]:+.1f} SE "
        f"({worst[0]} service, c = {worst[1]}, rho = {worst[2]}, "
        f"relative error {points[worst].relative_error(sweep_theory(*worst)):+.2%})"
    )


if __name__ == "__main__":
    main()
