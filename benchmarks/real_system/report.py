"""Real against predicted latency, per load: the table, the raw data and the chart.

For each load and each percentile (p50, p95, p99) the table gives the real value's mean over
the repeats and its range (min, max), the engine's prediction, and the error two ways: in
percent of the real mean, and in units of the real run-to-run spread, the half-range
(max - min) / 2 of the repeats (so |error| <= 1 means the prediction falls inside the range the
real system itself wandered over). A load whose runs the load generator did not keep to
schedule, or where requests failed, is refused: its row says why and carries no numbers.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.real_system.load import ScheduleVerdict
from benchmarks.real_system.predict import Prediction

STATS = ("p50", "p95", "p99")
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
TABLE_COLUMNS = (
    "rate_per_s",
    "utilisation",
    "stat",
    "real_mean_s",
    "real_min_s",
    "real_max_s",
    "predicted_s",
    "error_pct",
    "error_spreads",
    "repeats",
    "status",
)
MAX_FAILED_SHARE = 0.001


@dataclass(frozen=True)
class RealRun:
    """One run of the real system at one load: latencies after the warm-up, and its checks."""

    rate_per_s: float
    repeat: int
    latencies_s: np.ndarray
    failed: int
    verdict: ScheduleVerdict

    def percentile(self, stat: str) -> float:
        return float(np.quantile(self.latencies_s, QUANTILES[stat]))

    def refusal(self) -> str | None:
        """Why this run cannot be reported, or None."""
        if not self.verdict.kept:
            return f"load generator behind schedule ({self.verdict.reason})"
        total = self.failed + self.latencies_s.size
        if total == 0:
            return "no answered requests"
        if self.failed / total > MAX_FAILED_SHARE:
            return f"{self.failed} of {total} requests failed"
        return None


def errors(real: Sequence[float], predicted: float) -> tuple[float, float]:
    """(error in % of the real mean, error in half-ranges of the real values).

    The second is ±inf when the repeats agree exactly (a zero spread) and the prediction does
    not, and 0 when both agree. ValueError without real values.
    """
    if not real:
        raise ValueError("no real values")
    mean = float(np.mean(real))
    half_range = (max(real) - min(real)) / 2.0
    difference = predicted - mean
    percent = 100.0 * difference / mean if mean else math.inf
    if half_range > 0:
        spreads = difference / half_range
    else:
        spreads = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return percent, spreads


def table_rows(
    runs: Sequence[RealRun],
    predictions: Sequence[Prediction],
    utilisation: dict[float, float],
) -> list[dict[str, object]]:
    """One row per load and percentile (columns `TABLE_COLUMNS`), loads in increasing order."""
    predicted = {p.rate_per_s: p for p in predictions}
    rows: list[dict[str, object]] = []
    for rate in sorted({run.rate_per_s for run in runs}):
        at_rate = [run for run in runs if run.rate_per_s == rate]
        refusals = [reason for run in at_rate if (reason := run.refusal()) is not None]
        for stat in STATS:
            row: dict[str, object] = dict.fromkeys(TABLE_COLUMNS, math.nan)
            row.update(
                rate_per_s=rate,
                utilisation=utilisation.get(rate, math.nan),
                stat=stat,
                repeats=len(at_rate),
            )
            if refusals:
                row["status"] = "refused: " + refusals[0]
            else:
                real = [run.percentile(stat) for run in at_rate]
                row.update(
                    real_mean_s=float(np.mean(real)), real_min_s=min(real), real_max_s=max(real)
                )
                if rate in predicted:
                    value = getattr(predicted[rate], f"{stat}_s")
                    percent, spreads = errors(real, value)
                    row.update(predicted_s=value, error_pct=percent, error_spreads=spreads)
                row["status"] = "ok"
            rows.append(row)
    return rows


def _ms(value: object) -> str:
    return "—" if not isinstance(value, float) or math.isnan(value) else f"{value * 1e3:.2f}"


def _num(value: object, fmt: str) -> str:
    return "—" if not isinstance(value, float) or math.isnan(value) else format(value, fmt)


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """The table as text, times in milliseconds."""
    header = (
        f"{'req/s':>8} {'rho':>5} {'stat':>4} {'real ms (min-max)':>24} {'pred ms':>9}"
        f" {'err %':>7} {'err/spread':>10}  status"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        real = f"{_ms(row['real_mean_s'])} ({_ms(row['real_min_s'])}-{_ms(row['real_max_s'])})"
        lines.append(
            f"{row['rate_per_s']:>8.1f} {_num(row['utilisation'], '.2f'):>5} {row['stat']:>4}"
            f" {real:>24} {_ms(row['predicted_s']):>9} {_num(row['error_pct'], '+.1f'):>7}"
            f" {_num(row['error_spreads'], '+.2f'):>10}  {row['status']}"
        )
    return "\n".join(lines)


def write_table(rows: Sequence[dict[str, object]], path: Path) -> None:
    """The table as CSV (seconds)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: Sequence[dict[str, object]], path: Path, title: str) -> None:
    """Predicted and real percentiles against load, the real min-max as a band (PNG or SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(STATS), figsize=(4.2 * len(STATS), 3.6), sharex=True)
    for axis, stat in zip(axes, STATS, strict=True):
        mine = [r for r in rows if r["stat"] == stat and r["status"] == "ok"]
        rates = [float(r["rate_per_s"]) for r in mine]  # type: ignore[arg-type]

        def column(name: str, chosen: list[dict[str, object]] = mine) -> list[float]:
            return [float(r[name]) * 1e3 for r in chosen]  # type: ignore[arg-type]

        axis.fill_between(
            rates, column("real_min_s"), column("real_max_s"), alpha=0.25, label="real min-max"
        )
        axis.plot(rates, column("real_mean_s"), "o-", label="real (mean of repeats)")
        axis.plot(rates, column("predicted_s"), "s--", label="predicted")
        axis.set_title(stat)
        axis.set_xlabel("load (req/s)")
        axis.set_ylabel("latency (ms)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
