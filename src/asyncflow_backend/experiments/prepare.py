"""Checking an experiment before it runs, and building the scenario of each point.

Everything that can be known before the first replication is checked here,
so that a mistake is a list of located problems (exit 2, or 422), never a
failure halfway: the scenario, the seed, metric names (and windows against the horizon
and the schedules), the warm-up against
the horizon, every sweep path and every sweep point's scenario, the search's
load field.
"""

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from asyncflow_backend.experiments.load import LoadError, load_overrides
from asyncflow_backend.experiments.measure import metric_names
from asyncflow_backend.experiments.paths import PathError, read_path, with_overrides
from asyncflow_backend.experiments.plan import (
    DEFAULT_SEARCH_REPLICATIONS,
    Point,
    sweep_points,
)
from asyncflow_backend.experiments.spec import ExperimentSpec
from asyncflow_backend.experiments.windows import WindowError, is_windowed, parse_windowed
from asyncflow_backend.samplers.streams import draw_seed
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits
from asyncflow_backend.schemas.loading import (
    ScenarioValidationError,
    load_yaml,
    parse_scenario,
)
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.trace_files import TraceFileError, read_trace_file
from asyncflow_backend.schemas.validation import Loc, Problem

MAX_SWEEP_POINTS = 1000
SWEEP_VALIDATION_SETTING = "ASYNCFLOW_MAX_SWEEP_VALIDATION_MB"


class ExperimentValidationError(ValueError):
    """An experiment was rejected; `problems` lists every reason with its path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


POINT_SCENARIOS_KEPT = 2
"""Parsed point scenarios a prepared experiment keeps (the most recently used).

A parsed scenario takes about 17 times its JSON size in memory, so keeping
every point's would cost a sweep of 1000 points over an 830 KB scenario
some 15 GB; the replications of one point are asked for one after another,
so the last few serve nearly every call.
"""


@dataclass
class PreparedExperiment:
    """A checked experiment: its spec, base scenario (data and model), root seed and metrics."""

    spec: ExperimentSpec
    base: dict[str, Any]
    scenario: Scenario
    seed: int
    metrics: list[str]
    limits: ScenarioLimits | None = None
    """Size limits every point's scenario must keep (the service's), if any."""
    _scenarios: OrderedDict[str, Scenario] = field(default_factory=OrderedDict)
    _checked: dict[str, str | None] = field(default_factory=dict)

    def scenario_of(self, point: Point) -> Scenario:
        """The scenario of `point`; raises `ScenarioValidationError` or `PathError` if invalid."""
        if not point.values:
            return self.scenario
        key = point.key
        if key in self._scenarios:
            self._scenarios.move_to_end(key)
            return self._scenarios[key]
        scenario = parse_scenario(with_overrides(self.base, point.overrides))
        breached = [] if self.limits is None else check_limits(scenario, self.limits)
        if breached:
            raise ScenarioValidationError(breached)
        self._scenarios[key] = scenario
        while len(self._scenarios) > POINT_SCENARIOS_KEPT:
            self._scenarios.popitem(last=False)
        return scenario

    def check(self, point: Point) -> str | None:
        """Why `point` cannot run, or None; each point is parsed once, and its verdict kept."""
        key = point.key
        if key not in self._checked:
            self._checked[key] = self._problem_of(point)
        return self._checked[key]

    def _problem_of(self, point: Point) -> str | None:
        try:
            self.scenario_of(point)
        except ScenarioValidationError as exc:
            return "; ".join(str(p) for p in exc.problems[:3])
        except PathError as exc:
            return str(exc)
        return None


def _spec_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(
            p for p in error["loc"] if isinstance(p, int) or ("[" not in p and not p[:1].isupper())
        )
        problems.append(Problem(loc, error["msg"].removeprefix("Value error, ")))
    return problems


def parse_experiment(data: Any) -> ExperimentSpec:
    """Validate decoded data into an `ExperimentSpec` (its scenario is checked by `prepare`).

    Raises `ExperimentValidationError` listing every problem by path.
    """
    if not isinstance(data, dict):
        raise ExperimentValidationError([Problem((), "an experiment must be a mapping")])
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ExperimentValidationError(_spec_problems(exc)) from None


def load_experiment_file(path: str | Path) -> ExperimentSpec:
    """Read an experiment file (YAML or JSON); a `scenario` given as text is a path to a file.

    The scenario path is relative to the experiment file's folder, and a trace
    `file` in the scenario relative to the file that names it. Raises
    `ExperimentValidationError` for an unreadable or invalid file.
    """
    file = Path(path)
    try:
        data = load_yaml(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ExperimentValidationError([Problem((), f"cannot read {file}: {exc}")]) from None
    folder = file.parent
    if isinstance(data, dict) and isinstance(data.get("scenario"), str):
        scenario_file = file.parent / data["scenario"]
        try:
            data["scenario"] = load_yaml(scenario_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problem = Problem(("scenario",), f"cannot read {scenario_file}: {exc}")
            raise ExperimentValidationError([problem]) from None
        folder = scenario_file.parent
    if isinstance(data, dict) and "scenario" in data:
        # A trace file is relative to the file that names it, as for `asyncflow run`.
        try:
            data["scenario"] = read_trace_file(data["scenario"], folder)
        except TraceFileError as exc:
            where = exc.problem or Problem((), str(exc))
            raise ExperimentValidationError(
                [Problem(("scenario", *where.loc), where.message)]
            ) from None
    return parse_experiment(data)


def prepare(
    spec: ExperimentSpec,
    *,
    max_replications: int | None = None,
    limits: ScenarioLimits | None = None,
    max_sweep_validation_mb: float | None = None,
) -> PreparedExperiment:
    """Check `spec` against its scenario and fix its root seed.

    The root seed is the experiment's, else the scenario's, else a fresh one.
    `max_replications` caps the most replications the experiment may run,
    `limits` the size of every point's scenario (the service's limits), and
    `max_sweep_validation_mb` the work of validating every sweep point: the
    points times the scenario's JSON size, in MB (10^6 bytes). Raises
    `ExperimentValidationError` listing every problem.
    """
    try:
        scenario = parse_scenario(spec.scenario)
    except ScenarioValidationError as exc:
        raise ExperimentValidationError(
            [Problem(("scenario", *p.loc), p.message) for p in exc.problems]
        ) from None
    metrics = metric_names(scenario)
    problems: list[Problem] = []
    known = ", ".join(metrics)
    for loc, name in spec.metric_fields():
        if is_windowed(name):
            try:
                parse_windowed(name).bounds(scenario)
            except WindowError as exc:
                problems.append(Problem(loc, str(exc)))
        elif name not in metrics:
            problems.append(
                Problem(
                    loc,
                    f"unknown metric '{name}'; known: {known}, or a windowed one such as "
                    "latency.p95@[start,end] or throughput.goodput_rps@peak",
                )
            )
    metrics += spec.windowed()
    horizon = scenario.sim_settings.total_simulation_time
    if not isinstance(spec.warmup_s, str) and spec.warmup_s >= horizon:
        problems.append(Problem(("warmup_s",), f"must be shorter than the horizon ({horizon:g} s)"))
    prepared = PreparedExperiment(
        spec, dict(spec.scenario), scenario, _root_seed(spec, scenario), metrics, limits
    )
    if limits is not None:
        problems += [
            Problem(("scenario", *p.loc), p.message) for p in check_limits(scenario, limits)
        ]
    problems += _plan_problems(prepared, max_sweep_validation_mb)
    cap = most_replications(spec)
    if max_replications is not None and cap > max_replications:
        problems.append(
            Problem(
                (),
                f"the experiment may run up to {cap} replications, more than the limit of "
                f"{max_replications}",
            )
        )
    if problems:
        raise ExperimentValidationError(problems)
    return prepared


def restore(
    data: dict[str, Any], seed: int, limits: ScenarioLimits | None = None
) -> PreparedExperiment:
    """An experiment checked by `prepare` before it was stored, read back with its root seed.

    Raises `ExperimentValidationError` if the document no longer validates
    (for example after an upgrade that tightened the scenario language).
    """
    spec = parse_experiment(data)
    try:
        scenario = parse_scenario(spec.scenario)
    except ScenarioValidationError as exc:
        raise ExperimentValidationError(exc.problems) from None
    return PreparedExperiment(
        spec,
        dict(spec.scenario),
        scenario,
        seed,
        [*metric_names(scenario), *spec.windowed()],
        limits,
    )


def _root_seed(spec: ExperimentSpec, scenario: Scenario) -> int:
    if spec.seed is not None:
        return spec.seed
    return scenario.seed if scenario.seed is not None else draw_seed()


def _plan_problems(
    prepared: PreparedExperiment, max_sweep_validation_mb: float | None
) -> list[Problem]:
    spec = prepared.spec
    problems: list[Problem] = []
    if spec.search is not None:
        try:
            load_overrides(prepared.base, spec.search.load, 1.0)
        except LoadError as exc:
            return [Problem(("search", "load"), str(exc))]
        return problems
    if spec.sweep is None:
        return problems
    seen: set[str] = set()
    for i, parameter in enumerate(spec.sweep):
        if parameter.path in seen:
            problems.append(Problem(("sweep", i, "path"), "this path is swept twice"))
        seen.add(parameter.path)
        try:
            read_path(prepared.base, parameter.path)
        except PathError as exc:
            problems.append(Problem(("sweep", i, "path"), str(exc)))
    if problems:
        return problems
    count = math.prod(len(parameter.points()) for parameter in spec.sweep)
    if count > MAX_SWEEP_POINTS:
        return [Problem(("sweep",), f"{count} points, more than {MAX_SWEEP_POINTS}")]
    if max_sweep_validation_mb is not None:
        size_mb = len(json.dumps(prepared.base, separators=(",", ":"))) / 1e6
        if count * size_mb > max_sweep_validation_mb:
            message = (
                f"validating {count} points of a {size_mb * 1000:.0f} KB scenario means parsing "
                f"{count * size_mb:.1f} MB of scenarios, more than the {max_sweep_validation_mb:g} "
                f"MB of {SWEEP_VALIDATION_SETTING}; sweep fewer points or a smaller scenario"
            )
            return [Problem(("sweep",), message)]
    points = sweep_points(spec)
    for point in points:
        error = prepared.check(point)
        if error is not None:
            where = ", ".join(f"{p}={v!r}" for p, v in point.values)
            problems.append(Problem(("sweep",), f"at {where}: {error}"))
    return problems


def most_replications(spec: ExperimentSpec) -> int:
    """The most replications `spec` can run, all points together."""
    per_point = spec.replications
    if spec.until_precise is not None:
        per_point = spec.until_precise.max_replications
    if spec.search is not None:
        cap = spec.search.max_replications or DEFAULT_SEARCH_REPLICATIONS * spec.replications
        return cap * spec.search.max_points
    points = 1
    for parameter in spec.sweep or []:
        points *= len(parameter.points())
    return per_point * points
