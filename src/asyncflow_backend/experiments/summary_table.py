"""The summary tables `asyncflow experiment` prints."""

from rich.console import Console
from rich.table import Table

from asyncflow_backend.experiments.report import ExperimentReport, MetricSummary, PointReport

POINT_COLUMNS = (
    "latency.mean",
    "latency.p95",
    "latency.p99",
    "requests.not_completed_share",
    "time_to_outcome.p95",
    "throughput.mean_rps",
)
"""The latency of completed requests with, beside it, the share that did not complete and
the time to outcome of all, so that a point failing most requests cannot look fast; the
throughput is the goodput (completions per second)."""


def _scale(metric: str) -> tuple[float, str]:
    if metric.startswith(("latency.", "time_to_outcome.")):
        return 1000.0, " ms"
    if metric.endswith(("utilisation", "fraction", "share")):
        return 100.0, " %"
    return 1.0, ""


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    scale, unit = _scale(metric)
    return f"{value * scale:,.4g}{unit}"


def _with_half_width(metric: str, summary: MetricSummary | None) -> str:
    if summary is None or summary.mean is None:
        return "-"
    if summary.low is None or summary.high is None:
        return _value(metric, summary.mean)
    scale, unit = _scale(metric)
    half = (summary.high - summary.low) / 2 * scale
    return f"{summary.mean * scale:,.4g} ± {half:,.2g}{unit}"


def _metrics_table(report: ExperimentReport, point: PointReport) -> Table:
    level = f"{report.confidence:.0%}"
    table = Table(title=f"{len(point.replications)} replications, {level} t intervals")
    for column in ("metric", "mean", "std error", f"{level} low", f"{level} high"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in report.metrics:
        summary = point.summary.get(name)
        if summary is None:
            continue
        scale, unit = _scale(name)
        error = None if summary.standard_error is None else summary.standard_error
        table.add_row(
            name,
            _value(name, summary.mean),
            "-" if error is None else f"{error * scale:,.2g}{unit}",
            _value(name, summary.low),
            _value(name, summary.high),
        )
    return table


def _points_table(report: ExperimentReport) -> Table:
    level = f"{report.confidence:.0%}"
    table = Table(title=f"{len(report.points)} points, mean ± half-width of {level} t intervals")
    searching = report.search is not None
    table.add_column("factor" if searching else "point")
    table.add_column("n", justify="right")
    if searching:
        table.add_column("verdict")
    servers = [m for m in report.metrics if m.endswith(".cpu_utilisation")]
    columns = [*POINT_COLUMNS, *servers]
    for name in columns:
        table.add_column(name.removeprefix("servers."), justify="right")
    for point in report.points:
        label = (
            f"{point.factor:g}"
            if point.factor is not None
            else ", ".join(f"{path}={value}" for path, value in point.values.items()) or "-"
        )
        cells = [label, str(len(point.replications))]
        if searching:
            cells.append(point.verdict or point.error or "-")
        cells += [_with_half_width(name, point.summary.get(name)) for name in columns]
        table.add_row(*cells)
    return table


def print_report(console: Console, report: ExperimentReport) -> None:
    """A table of every metric for one point, or one row per point for sweeps and searches."""
    if report.kind == "replications" and report.points:
        console.print(_metrics_table(report, report.points[0]))
    else:
        console.print(_points_table(report))
    warmup = report.warmup
    cut = [r.warmup_s for p in report.points for r in p.replications]
    if cut:
        how = "MSER-5" if warmup == "mser5" else f"fixed {warmup:g} s"
        console.print(
            f"warm-up ({how}): {min(cut):g} to {max(cut):g} s left out; seed {report.seed}",
            soft_wrap=True,
        )
    for point in report.points:
        if point.precise is False:
            console.print(f"[yellow]not precise enough[/] at {point.key} after the cap")
    if report.search is not None:
        search = report.search
        console.print(f"[bold]{search.status}[/]: {search.message}", soft_wrap=True)
        if search.capacity_value is not None:
            console.print(f"{search.path} = {search.capacity_value:g} at capacity", soft_wrap=True)
