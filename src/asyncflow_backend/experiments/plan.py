"""Deciding what to run next: replications, until precise, sweeps and capacity searches.

The plan is replayed from the start over the replications finished so far
(`Ledger`): wherever it needs a replication that is not there yet, it notes it
as pending and stops that branch. So one pure function serves an experiment
run in this process and one spread over a queue, where each finished
replication asks the plan again; the same finished replications always give
the same next step.
"""

import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asyncflow_backend.experiments.load import load_overrides
from asyncflow_backend.experiments.measure import Replication
from asyncflow_backend.experiments.report import (
    ExperimentReport,
    MetricSummary,
    PointReport,
    SearchReport,
    SearchStatus,
    Verdict,
)
from asyncflow_backend.experiments.spec import FACTOR_DIGITS, ExperimentSpec, Search
from asyncflow_backend.statistics import Summary, summarise

INCONCLUSIVE_GROWTH = 2
DEFAULT_SEARCH_REPLICATIONS = 4
"""An inconclusive search point grows to this many times `replications` by default."""


@dataclass(frozen=True)
class Point:
    """The base scenario with some fields set (`values`, path to value)."""

    values: tuple[tuple[str, Any], ...] = ()
    factor: float | None = None

    @property
    def key(self) -> str:
        """A stable text key: the same point always has the same key."""
        if self.factor is not None:
            return f"factor={self.factor!r}"
        return json.dumps([list(pair) for pair in self.values], sort_keys=True) or "[]"

    @property
    def overrides(self) -> dict[str, Any]:
        """Path to value, as `paths.with_overrides` takes them."""
        return dict(self.values)


@dataclass(frozen=True)
class Needed:
    """A replication the plan needs: replication `index` of `point`."""

    point: Point
    index: int


class Pending(Exception):
    """Raised inside the plan where it needs replications that have not finished."""


PointCheck = Callable[[Point], str | None]
"""Returns why a point cannot run (its scenario is invalid), or None."""


@dataclass
class Ledger:
    """The finished replications by point key, and what the replayed plan visits and needs."""

    done: Mapping[str, Mapping[int, Replication]]
    check: PointCheck
    visited: dict[str, Point] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    needed: list[Needed] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def replications(self, point: Point, count: int) -> list[Replication]:
        """Replications 0..count-1 of `point`; raises `Pending` if any has not finished."""
        key = point.key
        self.visited.setdefault(key, point)
        self.planned[key] = max(self.planned.get(key, 0), count)
        finished = self.done.get(key, {})
        missing = [i for i in range(count) if i not in finished]
        if missing:
            self.needed.extend(Needed(point, i) for i in missing)
            raise Pending
        return [finished[i] for i in range(count)]

    def invalid(self, point: Point) -> str | None:
        """Why `point` cannot run, recorded in its report; None if it can."""
        self.visited.setdefault(point.key, point)
        error = self.check(point)
        if error is not None:
            self.errors[point.key] = error
        return error


def _values(replications: list[Replication], metric: str) -> list[float | None]:
    return [r.metrics.get(metric) for r in replications]


def _settle(ledger: Ledger, spec: ExperimentSpec, point: Point) -> None:
    """R replications of a point, more while `until_precise` is not met."""
    count = spec.replications
    target = spec.until_precise
    while True:
        done = ledger.replications(point, count)
        if target is None:
            return
        summary = summarise(_values(done, target.metric), spec.confidence)
        relative = summary.relative_half_width
        precise = relative is not None and relative <= target.relative_half_width
        ledger.notes[point.key] = {"precise": precise}
        if precise or count >= target.max_replications:
            return
        # The half-width shrinks as 1/√n: aim at the target, at most doubling per step.
        wanted = (
            2 * count
            if relative is None
            else math.ceil(count * (relative / target.relative_half_width) ** 2)
        )
        count = min(target.max_replications, max(count + 1, min(2 * count, wanted)))


def _sweep_points(spec: ExperimentSpec) -> list[Point]:
    assert spec.sweep is not None
    paths = [p.path for p in spec.sweep]
    grids = [p.points() for p in spec.sweep]
    return [Point(tuple(zip(paths, combo, strict=True))) for combo in itertools.product(*grids)]


def sweep_points(spec: ExperimentSpec) -> list[Point]:
    """Every point of the experiment known before it runs (all but a search's)."""
    return _sweep_points(spec) if spec.sweep is not None else [Point()]


def _judge(ledger: Ledger, spec: ExperimentSpec, search: Search, point: Point) -> Verdict:
    """Pass, fail or inconclusive for the objective at `point`, adding replications if unsure."""
    count = spec.replications
    cap = search.max_replications or DEFAULT_SEARCH_REPLICATIONS * spec.replications
    bound = search.objective.at_most
    while True:
        summary: Summary = summarise(
            _values(ledger.replications(point, count), search.objective.metric), spec.confidence
        )
        upper = summary.upper_bound(spec.confidence)
        lower = summary.lower_bound(spec.confidence)
        verdict: Verdict
        if upper is not None and upper <= bound:
            verdict = "pass"
        elif lower is not None and lower > bound:
            verdict = "fail"
        elif count >= cap:
            verdict = "inconclusive"
        else:
            count = min(cap, INCONCLUSIVE_GROWTH * count)
            continue
        ledger.notes[point.key] = {"verdict": verdict}
        return verdict


@dataclass
class _SearchState:
    low: float | None = None
    high: float | None = None
    unsure: list[float] = field(default_factory=list)
    tried: int = 0


def _number(value: Any) -> float | None:
    """A scaled field's value when it is a number (a schedule is not)."""
    return float(value) if isinstance(value, int | float) else None


class _SearchStopped(Exception):
    def __init__(self, status: SearchStatus, message: str) -> None:
        self.status = status
        self.message = message


def _search(ledger: Ledger, spec: ExperimentSpec, base: Mapping[str, Any]) -> SearchReport:
    search = spec.search
    assert search is not None
    state = _SearchState()
    at_one = load_overrides(base, search.load, 1.0)
    path = next(iter(at_one))

    def try_factor(factor: float) -> Verdict:
        if state.tried >= search.max_points:
            raise _SearchStopped("max_points", f"stopped after {search.max_points} points")
        factor = round(factor, FACTOR_DIGITS)
        point = Point(tuple(load_overrides(base, search.load, factor).items()), factor)
        state.tried += 1
        error = ledger.invalid(point)
        if error is not None:
            raise _SearchStopped("invalid", f"factor {factor:g}: {error}")
        verdict = _judge(ledger, spec, search, point)
        if verdict == "pass":
            state.low = factor if state.low is None else max(state.low, factor)
        elif verdict == "fail":
            state.high = factor if state.high is None else min(state.high, factor)
        else:
            state.unsure.append(factor)
        return verdict

    status: SearchStatus = "found"
    message = ""
    try:
        try_factor(search.start)
        factor = search.start
        # Bracket: down until a pass, then up until a fail.
        while state.low is None:
            if factor <= search.min_factor:
                raise _SearchStopped(
                    "below_min_factor", f"even factor {search.min_factor:g} misses the objective"
                )
            factor = max(search.min_factor, factor / 2)
            try_factor(factor)
        factor = max(search.start, state.low)
        while state.high is None:
            if factor >= search.max_factor:
                raise _SearchStopped(
                    "above_max_factor", f"even factor {search.max_factor:g} keeps the objective"
                )
            factor = min(search.max_factor, factor * 2)
            try_factor(factor)
        # Bisect the widest gap between the bracket and the inconclusive points inside it.
        while True:
            low, high = state.low, state.high
            assert low is not None
            assert high is not None
            edges = sorted({low, high, *(f for f in state.unsure if low < f < high)})
            gap_low, gap_high = max(itertools.pairwise(edges), key=lambda g: g[1] - g[0])
            if (high - low) / low <= search.tolerance or (gap_high - gap_low) / low <= (
                search.tolerance
            ):
                break
            try_factor((gap_low + gap_high) / 2)
    except _SearchStopped as stop:
        status, message = stop.status, stop.message
    if status == "found":
        message = (
            f"capacity factor {state.low:g}: the objective holds at {state.low:g} and fails "
            f"at {state.high:g}, each at confidence {spec.confidence:g}"
        )
    return SearchReport(
        load=search.load,
        path=path,
        fields=list(at_one),
        base_value=_number(at_one[path]),
        objective=search.objective,
        confidence=spec.confidence,
        status=status,
        capacity=state.low,
        low=state.low,
        high=state.high,
        capacity_value=None
        if state.low is None
        else _number(load_overrides(base, search.load, state.low)[path]),
        message=message,
    )


@dataclass(frozen=True)
class Step:
    """Where an experiment stands: the replications to run next, and the report so far."""

    needed: list[Needed]
    report: ExperimentReport


def plan(
    spec: ExperimentSpec,
    base: Mapping[str, Any],
    seed: int,
    done: Mapping[str, Mapping[int, Replication]],
    metrics: list[str],
    check: PointCheck,
) -> Step:
    """Replay the experiment over the finished replications `done` (point key -> index -> it).

    Returns the replications needed next (empty once the experiment is
    complete) and the report of everything finished so far. `check` says why a
    search point cannot run; sweep points are checked before the experiment
    starts. Raises `PathError` if the search's load field is missing.
    """
    ledger = Ledger(done, check)
    search_report = None
    if spec.search is not None:
        try:
            search_report = _search(ledger, spec, base)
        except Pending:
            search_report = None
    else:
        for point in sweep_points(spec):
            try:
                _settle(ledger, spec, point)
            except Pending:
                continue
    points = [
        _point_report(ledger, spec, metrics, key, point) for key, point in ledger.visited.items()
    ]
    report = ExperimentReport(
        kind=spec.kind,
        seed=seed,
        confidence=spec.confidence,
        warmup=spec.warmup_s,
        metrics=metrics,
        points=sorted(points, key=lambda p: p.factor or 0.0) if spec.search else points,
        search=search_report,
        complete=not ledger.needed,
        replications_done=sum(len(p.replications) for p in points),
        replications_planned=sum(ledger.planned.values()),
    )
    return Step(ledger.needed, report)


def _point_report(
    ledger: Ledger, spec: ExperimentSpec, metrics: list[str], key: str, point: Point
) -> PointReport:
    finished = ledger.done.get(key, {})
    replications = [finished[i] for i in sorted(finished)]
    notes = ledger.notes.get(key, {})
    seen = {name for r in replications for name in r.metrics}
    names = [m for m in metrics if m in seen] + sorted(seen.difference(metrics))
    return PointReport(
        key=key,
        values=point.overrides,
        factor=point.factor,
        replications=replications,
        summary={
            name: MetricSummary.of(summarise(_values(replications, name), spec.confidence))
            for name in names
        },
        planned=ledger.planned.get(key, 0),
        precise=notes.get("precise"),
        verdict=notes.get("verdict"),
        error=ledger.errors.get(key),
    )
