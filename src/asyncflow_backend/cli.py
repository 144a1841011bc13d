"""The `asyncflow` command: run and validate scenarios, serve the API, run workers."""

import json
import math
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from asyncflow_backend.config.constants import MIN_RUN_MEMORY_MB, Outcome
from asyncflow_backend.schemas.loading import ScenarioValidationError, load_scenario_file
from asyncflow_backend.schemas.replicas import edge_count
from asyncflow_backend.schemas.results import Recovery, ServerStats, SimulationResults
from asyncflow_backend.schemas.scenario import Scenario, name_from_file

if TYPE_CHECKING:
    from asyncflow_backend.config.settings import Settings

INVALID_INPUT = 2
RUN_FAILED = 1

app = typer.Typer(
    help="Discrete-event simulations of asynchronous backends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Click's own help layout: Typer's rich panels print a type after every option,
    # flags included (`--help <bool>`), as if they took a value.
    rich_markup_mode=None,
)
console = Console()
errors = Console(stderr=True)

ScenarioPath = Annotated[
    Path, typer.Argument(help="Scenario file (.yml, .yaml or .json).", metavar="SCENARIO")
]


def _show_version(value: bool) -> None:
    if value:
        from asyncflow_backend import engine_version

        console.print(f"asyncflow {engine_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Discrete-event simulations of asynchronous backends."""


class PlotFiles(StrEnum):
    """Which image files `run --plots` writes for each chart."""

    PNG = "png"
    SVG = "svg"
    BOTH = "both"


_IMAGE_FORMATS: dict[PlotFiles, tuple[Literal["png", "svg"], ...]] = {
    PlotFiles.PNG: ("png",),
    PlotFiles.SVG: ("svg",),
    PlotFiles.BOTH: ("png", "svg"),
}


def _load(path: Path) -> Scenario:
    try:
        return load_scenario_file(path)
    except ScenarioValidationError as exc:
        # soft_wrap: one problem per line whatever the width, so scripts can grep them.
        errors.print(f"[bold red]invalid scenario[/] {path}:", soft_wrap=True)
        for problem in exc.problems:
            errors.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(INVALID_INPUT) from None


def _settings() -> "Settings":
    """The service's settings; a variable that cannot be read exits with status 2, naming it."""
    from pydantic import ValidationError

    from asyncflow_backend.config.environment import env_name
    from asyncflow_backend.config.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            errors.print(
                f"{env_name(field)}: {error['msg']}", markup=False, highlight=False, soft_wrap=True
            )
        raise typer.Exit(INVALID_INPUT) from None


def _run_memory_mb(given: int | None) -> int:
    """The run's memory budget: `--max-memory-mb`, else ASYNCFLOW_MAX_RUN_MEMORY_MB, else its
    default, which needs no settings loaded."""
    from asyncflow_backend.config.constants import DEFAULT_MAX_RUN_MEMORY_MB
    from asyncflow_backend.config.environment import is_set

    if given is not None:
        return given
    return (
        _settings().max_run_memory_mb if is_set("max_run_memory_mb") else DEFAULT_MAX_RUN_MEMORY_MB
    )


def _report_warnings(scenario: Scenario) -> None:
    """Print on stderr, one per line, what is legal in `scenario` but probably not meant."""
    from asyncflow_backend.schemas.warnings import find_warnings

    for warning in find_warnings(scenario):
        errors.print("[bold yellow]warning:[/] ", end="")
        errors.print(str(warning), markup=False, highlight=False, soft_wrap=True)


@app.command(short_help="Check a scenario: every problem and warning, with its path.")
def validate(scenario: ScenarioPath) -> None:
    """Check a scenario and report every problem with its path; exit 2 if invalid.

    Warnings (legal input that is probably not meant) go to stderr and leave
    the exit status at 0.
    """
    loaded = _load(scenario)
    _report_warnings(loaded)
    nodes = loaded.topology_graph.nodes
    console.print(
        f"[green]valid[/] {scenario}: {sum(s.copies for s in nodes.servers)} server(s), "
        f"{edge_count(loaded)} edge(s), "
        f"{loaded.sim_settings.total_simulation_time:g} s simulated, "
        f"~{loaded.expected_requests:,.0f} requests expected",
        soft_wrap=True,
    )


@app.command(short_help="Run a scenario and print a summary; write results and charts.")
def run(
    scenario: ScenarioPath,
    seed: Annotated[
        int | None, typer.Option(help="Seed; overrides the scenario's.", min=0, metavar="N")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the results document to FILE, creating its folders.",
            metavar="FILE",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    plots_dir: Annotated[
        Path | None,
        typer.Option(
            "--plots", help="Write every chart into folder DIR, creating it.", metavar="DIR"
        ),
    ] = None,
    plot_files: Annotated[
        PlotFiles,
        typer.Option("--plot-format", help="Image format of the charts.", metavar="png|svg|both"),
    ] = PlotFiles.PNG,
    max_memory_mb: Annotated[
        int | None,
        typer.Option(
            "--max-memory-mb",
            min=MIN_RUN_MEMORY_MB,
            metavar="MB",
            help="Memory the run may use; stop it, exit 1, past that. "
            "Default: ASYNCFLOW_MAX_RUN_MEMORY_MB.",
        ),
    ] = None,
) -> None:
    """Run a scenario with a progress bar, print a summary, optionally write results and charts.

    The output paths are checked, and missing folders created, before the run
    starts: a path that cannot be written exits with status 2 and runs nothing.
    """
    from asyncflow_backend.runtime.memory import MemoryBudget, MemoryBudgetExceeded
    from asyncflow_backend.runtime.runner import RunProgress, SimulationRunner
    from asyncflow_backend.schemas.results import NonFiniteResultError

    loaded = _load(scenario)
    _report_warnings(loaded)
    if json_out is not None:
        _prepare_file(json_out, "--json")
    if plots_dir is not None:
        _prepare_folder(plots_dir, "--plots")
    runner = SimulationRunner(loaded, seed=seed)
    horizon = loaded.sim_settings.total_simulation_time
    budget = MemoryBudget(_run_memory_mb(max_memory_mb))
    with Progress(
        TextColumn("[bold]simulating[/]"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} s"),
        TimeElapsedColumn(),
        console=errors,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("run", total=horizon)

        def progress(report: RunProgress) -> bool:
            budget.check()
            bar.update(task, completed=report.simulated_s)
            return False

        try:
            results = runner.run(progress)
        except (NonFiniteResultError, MemoryBudgetExceeded) as exc:
            errors.print(f"run failed: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(RUN_FAILED) from None
    name = loaded.name or name_from_file(scenario.name)
    _print_summary(results, name, loaded.description)
    if json_out is not None:
        _write(json_out, json.dumps(results.model_dump(mode="json")).encode("utf-8"))
        console.print(f"results written to {json_out}", soft_wrap=True)
    if plots_dir is not None:
        _write_plots(plots_dir, results, loaded, name, plot_files)


def _refuse_path(option: str, path: Path, reason: str) -> NoReturn:
    errors.print(f"{option} {path}: {reason}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(INVALID_INPUT)


def _make_folder(option: str, given: Path, folder: Path) -> None:
    where = "" if folder == given else f"its folder {folder} "
    if folder.exists() and not folder.is_dir():
        _refuse_path(option, given, f"{where}is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _refuse_path(
            option, given, f"cannot create {where or 'the folder '}({exc.strerror or exc})"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        _refuse_path(option, given, f"{where or 'the folder '}is not writable")


def _prepare_file(path: Path, option: str) -> None:
    """Create the folders of `path` and check it can be written, before anything runs."""
    if path.is_dir():
        _refuse_path(option, path, "is a folder; give a file name")
    _make_folder(option, path, path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        _refuse_path(option, path, "the file is not writable")


def _prepare_folder(folder: Path, option: str) -> None:
    """Create `folder` (and its parents) and check it can be written, before anything runs."""
    _make_folder(option, folder, folder)


def _write(path: Path, content: bytes) -> None:
    # The folder was checked before the run; a full disk can still fail the write.
    try:
        path.write_bytes(content)
    except OSError as exc:
        errors.print(f"cannot write {path}: {exc.strerror or exc}", markup=False, highlight=False)
        raise typer.Exit(RUN_FAILED) from None


def _write_plots(
    directory: Path,
    results: SimulationResults,
    scenario: Scenario,
    scenario_name: str | None,
    files: PlotFiles,
) -> None:
    # matplotlib takes a while to import: only runs that ask for charts pay for it.
    from asyncflow_backend.plots import PLOT_NAMES, render_plot

    formats = _IMAGE_FORMATS[files]
    for name in PLOT_NAMES:
        for fmt in formats:
            image = render_plot(
                name, results, events=scenario.events, scenario_name=scenario_name, fmt=fmt
            )
            _write(directory / f"{name}.{fmt}", image)
    console.print(f"{len(PLOT_NAMES) * len(formats)} charts written to {directory}")


@app.command(short_help="Serve the REST API and the web page.")
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on.", metavar="ADDRESS")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535, metavar="PORT")] = 8000,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            "-p",
            min=1,
            metavar="N",
            help="API processes sharing the port; more than one needs ASYNCFLOW_REDIS_URL.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (docs at /docs), configured by ASYNCFLOW_* variables."""
    import uvicorn

    from asyncflow_backend.main import create_app

    settings = _settings()
    if processes == 1:
        uvicorn.run(create_app(), host=host, port=port, log_level="info")
        return
    if settings.redis_url is None:
        # Each process would keep a local pool of its own, and each pool would
        # also resume the runs the others hold after a restart.
        errors.print(
            "--processes above 1 needs ASYNCFLOW_REDIS_URL: without Redis each API process "
            "runs jobs in a local pool of its own. Set it and start `asyncflow worker`s, "
            "or serve with one process."
        )
        raise typer.Exit(INVALID_INPUT)
    from sqlalchemy.engine import make_url

    from asyncflow_backend.db.migrate import upgrade

    if make_url(settings.database_url).get_backend_name() == "sqlite":
        # Migrate once here rather than in each process at the same moment.
        upgrade(settings.database_url)
    uvicorn.run(
        "asyncflow_backend.main:create_app",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_level="info",
    )


@app.command(short_help="Execute runs from the Redis queue.")
def worker(
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes", "-p", min=1, metavar="N", help="Worker processes; default one per CPU."
        ),
    ] = None,
) -> None:
    """Execute runs from the Redis queue (needs ASYNCFLOW_REDIS_URL) until stopped."""
    from asyncflow_backend.jobs.worker import run_worker

    if _settings().redis_url is None:
        errors.print(
            "ASYNCFLOW_REDIS_URL is not set: without Redis the API executes runs itself, "
            "in a local process pool, and needs no worker."
        )
        raise typer.Exit(INVALID_INPUT)
    raise typer.Exit(run_worker(processes))


ExperimentPath = Annotated[
    Path, typer.Argument(help="Experiment file (.yml, .yaml or .json); see docs/experiments.md.")
]


@app.command()
def experiment(
    file: ExperimentPath,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the experiment's report here.")
    ] = None,
    processes: Annotated[
        int, typer.Option("--processes", "-p", min=1, help="Replications run at once.")
    ] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    plots_dir: Annotated[
        Path | None,
        typer.Option("--plots", help="Write charts of the headline metrics into this directory."),
    ] = None,
    plot_files: Annotated[
        PlotFiles, typer.Option("--plot-format", help="Image format of the charts.")
    ] = PlotFiles.PNG,
) -> None:
    """Run replications, a sweep or a capacity search; print means with confidence intervals."""
    from asyncflow_backend.experiments import (
        ExperimentValidationError,
        load_experiment_file,
        prepare,
        run_experiment,
    )
    from asyncflow_backend.experiments.summary_table import print_report

    try:
        prepared = prepare(load_experiment_file(file))
    except ExperimentValidationError as exc:
        errors.print(f"[bold red]invalid experiment[/] {file}:", soft_wrap=True)
        for problem in exc.problems:
            errors.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(INVALID_INPUT) from None
    with Progress(
        TextColumn("[bold]replications[/]"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        console=errors,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("experiment", total=prepared.spec.replications)
        report = run_experiment(
            prepared,
            processes=processes,
            on_progress=lambda done, planned: bar.update(task, completed=done, total=planned),
        )
    print_report(console, report)
    if json_out is not None:
        json_out.write_text(report.model_dump_json(), encoding="utf-8")
        console.print(f"report written to {json_out}", soft_wrap=True)
    if plots_dir is not None:
        from asyncflow_backend.plots.experiment import headline_metrics, render_experiment_plot

        plots_dir.mkdir(parents=True, exist_ok=True)
        names = headline_metrics(report)
        for name in names:
            for fmt in _IMAGE_FORMATS[plot_files]:
                image = render_experiment_plot(report, name, fmt=fmt)
                (plots_dir / f"{name}.{fmt}").write_bytes(image)
        console.print(f"{len(names)} chart(s) written to {plots_dir}", soft_wrap=True)


db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.", metavar="REVISION")] = "head",
) -> None:
    """Create or migrate the tables of ASYNCFLOW_DATABASE_URL up to the latest revision."""
    from sqlalchemy.engine import make_url

    from asyncflow_backend.db.migrate import MissingDatabaseError, upgrade

    url = _settings().database_url
    try:
        upgrade(url, revision)
    except MissingDatabaseError as missing:
        errors.print(str(missing), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(INVALID_INPUT) from None
    shown = make_url(url).render_as_string(hide_password=True)
    console.print(f"database {shown} upgraded to {revision}", markup=False, highlight=False)


def _sig(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, without an exponent below a million:
    0.00123 reads `0.00123`, 1234.5 reads `1,234` and 2.0 reads `2`, so no small value
    rounds to 0."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= 6 or magnitude < -6:
        return f"{value:.{digits}g}"
    decimals = max(0, digits - 1 - magnitude)
    text = f"{round(value, decimals):,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt(value: float | None, scale: float = 1000.0, unit: str = "ms") -> str:
    return "-" if value is None else f"{_sig(value * scale)} {unit}"


def _print_summary(
    results: SimulationResults, name: str | None = None, description: str | None = None
) -> None:
    """The run's totals, then a table each for its replica groups, servers, endpoints and
    pools; `name` titles it and `description` follows it."""
    req, lat, meta = results.requests, results.latency, results.meta
    # Text, not markup: a name such as "[red]x" is shown as written.
    table = Table(
        title=Text(f"Results: {name}" if name else "Results", style="bold"),
        caption=Text(description) if description else None,
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("requests generated", f"{req.generated:,}")
    table.add_row("completed", f"{req.completed:,}")
    table.add_row("dropped", f"{req.dropped:,}")
    # Outcomes a scenario without the feature cannot have stay out of its summary.
    for label, count in (
        ("failed", req.failed),
        ("timed out", req.timed_out),
        ("rejected", req.rejected),
        ("late answers", req.late_answers),
        ("retries", req.retries),
        ("retries refused by the budget", req.retries_refused),
    ):
        if count:
            table.add_row(label, f"{count:,}")
    table.add_row("in flight at the end", f"{req.in_flight:,}")
    if req.retries:
        table.add_row("attempts (first + retries)", f"{req.attempts:,}")
    table.add_row("throughput (answers)", f"{_sig(results.throughput.mean_rps)} req/s")
    # The latency counts completed requests only: what did not complete and the goodput
    # stand beside it, so that a system failing most requests cannot look fast.
    goodput = results.throughput.goodput_rps
    if goodput is not None:
        table.add_row("goodput (completed)", f"{_sig(goodput)} req/s")
    if req.not_completed_share is not None:
        table.add_row("not completed", _percent(req.not_completed_share))
    for stat in ("mean", "p50", "p95", "p99", "max"):
        table.add_row(f"latency {stat} (completed)", _fmt(getattr(lat, stat)))
    outcome = results.time_to_outcome
    if outcome is not None:
        for stat in ("mean", "p95", "p99"):
            table.add_row(f"time to outcome {stat} (all ended)", _fmt(getattr(outcome, stat)))
    worst = _worst_window(results)
    if worst is not None:
        table.add_row("worst window p99", worst)
    for verdict in results.recovery or ():
        table.add_row(f"recovery after {verdict.trigger}", _recovery_cell(verdict))
    closed = results.closed
    if closed is not None:
        table.add_row("closed: users N", f"{_sig(closed.users_mean)} (at most {closed.users_max})")
        table.add_row("think time Z", _fmt(closed.think_time_mean_s))
        table.add_row("response time R", _fmt(closed.response_time_mean_s))
        law = closed.interactive_law_rps
        table.add_row("N / (R + Z)", "-" if law is None else f"{_sig(law)} req/s")
    table.add_row("seed", str(meta.seed))
    table.add_row("wall time", f"{meta.wall_seconds:.2f} s for {meta.events_processed:,} events")
    # A metastable failure is the first thing to know about a run: said before anything else.
    for line in metastable_warnings(results):
        console.print(Text(line, style="bold red"))
    warning = not_completed_warning(results)
    if warning is not None:
        console.print(Text(warning, style="bold red"))
    console.print(table)
    if results.replica_groups:
        console.print(_replica_groups_table(results))
    console.print(_servers_table(results))
    console.print(_endpoints_table(results))
    if results.pools:
        console.print(_pools_table(results))
    if any(stats.failures for stats in results.servers.values()):
        console.print(_failures_table(results))
    if results.calls:
        console.print(_calls_table(results))
    if any(end.outcome != Outcome.COMPLETED for end in req.ends):
        console.print(_ends_table(results))
    if results.breakdown:
        console.print(_breakdown_table(results))


NOT_COMPLETED_WARNING_SHARE = 0.01
"""Above this share of requests not completed, the summary says so before any latency."""


def not_completed_warning(results: SimulationResults) -> str | None:
    """A sentence saying how many requests did not complete and how they ended, when more
    than NOT_COMPLETED_WARNING_SHARE of them did not; else None."""
    req = results.requests
    share = req.not_completed_share
    if share is None or share <= NOT_COMPLETED_WARNING_SHARE:
        return None
    ways = [
        f"{count:,} {label}"
        for label, count in (
            ("timed out", req.timed_out),
            ("rejected", req.rejected),
            ("failed", req.failed),
            ("dropped", req.dropped),
            ("still in flight at the end", req.in_flight),
        )
        if count
    ]
    goodput = results.throughput.goodput_rps
    rate = "" if goodput is None else f"; goodput {_sig(goodput)} req/s"
    return (
        f"Warning: {_percent(share)} of requests did not complete ({', '.join(ways)}){rate}. "
        "The latency below counts completed requests only; the time to outcome counts "
        "every request that ended."
    )


def metastable_warnings(results: SimulationResults) -> list[str]:
    """A sentence for each trigger the run had not recovered from by the horizon."""
    horizon = results.meta.simulated_seconds
    return [
        f"{verdict.note[:1].upper()}{verdict.note[1:]}."
        for verdict in results.recovery or ()
        if verdict.recovered is False and verdict.judged_until_s >= horizon
    ]


def _recovery_cell(verdict: Recovery) -> str:
    if verdict.recovered:
        return f"recovered in {_sig(verdict.recovery_s or 0.0)} s"
    if verdict.recovered is None:
        return "cannot be judged"
    return f"not by {verdict.judged_until_s:g} s"


def _worst_window(results: SimulationResults) -> str | None:
    """The highest per-window p99, and where it was: what a spike or an outage did."""
    over_time = results.latency.over_time
    if over_time is None:
        return None
    windows = [(p99, k) for k, p99 in enumerate(over_time.p99) if p99 is not None]
    if not windows:
        return None
    p99, k = max(windows)
    start = k * over_time.window_s
    return f"{_fmt(p99)} in [{start:g}, {start + over_time.window_s:g}) s"


SUMMARY_MAX_SERVERS = 12
"""Servers listed in the summary, busiest first; the rest are counted in a last row."""


def _percent(fraction: float) -> str:
    return f"{_sig(fraction * 100)} %"


def _servers_table(results: SimulationResults) -> Table:
    # Short headers, explained in the caption, keep each row on one line in 80 columns.
    table = Table(
        title="Servers, busiest first",
        caption="ready queue: mean / max requests waiting for a core; RAM: peak / capacity",
    )
    headers = ("server", "CPU of cores", "ready queue", "RAM", "time p99")
    for header in headers:
        table.add_column(header, justify="left" if header == "server" else "right")
    ranked = sorted(results.servers.items(), key=lambda item: (-item[1].cpu_utilisation, item[0]))
    for server_id, stats in ranked[:SUMMARY_MAX_SERVERS]:
        table.add_row(
            Text(server_id),
            f"{_percent(stats.cpu_utilisation)} of {_cores(stats)}",
            _mean_max(stats.ready_queue_mean, stats.ready_queue_max),
            _ram(stats.ram_peak_mb, stats.ram_mb),
            _fmt(stats.latency.p99 if stats.latency else None),
        )
    rest = len(ranked) - SUMMARY_MAX_SERVERS
    if rest > 0:
        table.add_row(f"... and {rest} more (--json has them all)", "", "", "", "")
    return table


def _replica_groups_table(results: SimulationResults) -> Table:
    """Each replica group taken as one: its replicas' numbers summed, averaged or pooled."""
    table = Table(
        title="Replica groups",
        caption="throughput summed; CPU over all cores; ready queue summed (mean / max); "
        "time on the server pooled",
    )
    for header in ("group", "replicas", "throughput", "CPU", "ready queue", "time p99"):
        table.add_column(header, justify="left" if header == "group" else "right")
    for name, group in results.replica_groups.items():
        table.add_row(
            Text(name),
            str(group.replicas),
            f"{_sig(group.throughput_rps)} req/s",
            _percent(group.cpu_utilisation),
            _mean_max(group.ready_queue_mean, group.ready_queue_max),
            _fmt(group.latency.p99),
        )
    return table


def _cores(stats: ServerStats) -> str:
    """The cores utilisation is read against: the mean when a schedule changed them."""
    if stats.mean_cores is None or stats.mean_cores == stats.cores:
        return str(stats.cores)
    return f"{stats.mean_cores:.3g} (mean)"


def _mean_max(mean: float | None, peak: float | None) -> str:
    return "-" if mean is None else f"{_sig(mean)} / {_sig(peak or 0.0)}"


def _ram(peak_mb: float | None, capacity_mb: float | None) -> str:
    """`peak / capacity MB (share)`: how close the server came to running out."""
    peak = "-" if peak_mb is None else _sig(peak_mb)
    if capacity_mb is None:
        return f"{peak} / - MB"
    share = "" if peak_mb is None else f" ({_sig(peak_mb / capacity_mb * 100, 2)} %)"
    return f"{peak} / {_sig(capacity_mb)} MB{share}"


def _endpoints_table(results: SimulationResults) -> Table:
    table = Table(title="Time on the server, per endpoint")
    for header in ("server", "endpoint", "requests", "mean", "p95", "p99"):
        table.add_column(header, justify="left" if header in ("server", "endpoint") else "right")
    for server_id, stats in results.servers.items():
        for name, times in stats.endpoints.items():
            table.add_row(
                Text(server_id),
                Text(name),
                f"{times.count:,}",
                _fmt(times.mean),
                _fmt(times.p95),
                _fmt(times.p99),
            )
    return table


def _ends_table(results: SimulationResults) -> Table:
    """Every way requests ended, by place and reason (the per-second series are in --json)."""
    table = Table(title="How requests ended")
    for header in ("outcome", "place", "reason", "requests"):
        table.add_column(header, justify="right" if header == "requests" else "left")
    for end in results.requests.ends:
        table.add_row(end.outcome, Text(end.place), end.reason, f"{end.count:,}")
    return table


def _calls_table(results: SimulationResults) -> Table:
    table = Table(title="Calls")
    for header in ("call site", "sent", "answered", "failed", "mean", "p99"):
        table.add_column(header, justify="left" if header == "call site" else "right")
    for site_id, stats in results.calls.items():
        table.add_row(
            site_id,
            f"{stats.sent:,}",
            f"{stats.answered:,}",
            f"{stats.failed:,}",
            _fmt(stats.latency.mean),
            _fmt(stats.latency.p99),
        )
    return table


BREAKDOWN_SHOWN_SHARE = 0.005
"""Parts of the breakdown under this share of the mean latency are summed in one row."""


def _breakdown_table(results: SimulationResults) -> Table:
    """The parts of the mean response time, largest first; the small ones in one row."""
    table = Table(title="Where the mean response time goes")
    for header in ("place", "spent on", "mean", "share"):
        table.add_column(header, justify="left" if header in ("place", "spent on") else "right")
    parts = sorted(results.breakdown, key=lambda part: part.share, reverse=True)
    small = [part for part in parts if part.share < BREAKDOWN_SHOWN_SHARE]
    for part in parts[: len(parts) - len(small)]:
        table.add_row(Text(part.place), part.category, _fmt(part.mean_s), _percent(part.share))
    if small:
        table.add_row(
            f"{len(small)} more",
            "",
            _fmt(sum(part.mean_s for part in small)),
            _percent(sum(part.share for part in small)),
        )
    table.add_row("total", "", _fmt(results.latency.mean), _percent(1.0), style="bold")
    return table


def _pools_table(results: SimulationResults) -> Table:
    table = Table(title="Connection pools")
    for header in ("pool", "size", "utilisation", "mean wait", "waiting mean / max"):
        table.add_column(header, justify="left" if header == "pool" else "right")
    for pool_id, stats in results.pools.items():
        table.add_row(
            Text(pool_id),
            str(stats.size),
            _percent(stats.utilisation),
            _fmt(stats.wait_mean_s),
            _mean_max(stats.waiting_mean, stats.waiting_max),
        )
    return table


def _failures_table(results: SimulationResults) -> Table:
    table = Table(title="Failures", caption="availability: share of the run each server was up")
    for header in ("server", "availability", "failures", "down"):
        table.add_column(header, justify="left" if header == "server" else "right")
    for server_id, stats in results.servers.items():
        if stats.failures:
            table.add_row(
                Text(server_id),
                _percent(stats.availability),
                str(stats.failures),
                f"{_sig(stats.downtime_s)} s",
            )
    return table


if __name__ == "__main__":  # pragma: no cover
    app()
