"""Does it recover? After each transient trigger (`schemas.triggers`), whether and when the
goodput and the queues came back to their level before it.

The rule (docs/overload.md, "Does it recover?"), with W = `window_s` whole seconds,
tol = `tolerance` and B = `baseline_s`:

1. Baseline: the whole seconds of [max(0, start - B), start). Its goodput G0 is the mean
   completions per second there; its queue Q0 is the highest mean total queue (ready
   queues plus pool queues, as sampled) over the windows of W seconds that fit in it, the
   noise of a steady state included. Fewer than W seconds: no baseline. A trigger that
   starts before the previous one recovered, or too soon after it to measure one, is
   judged against the previous trigger's baseline.
2. Recovered at the first whole second t >= end such that the window [t, t + W) has mean
   goodput >= (1 - tol) G0 and mean total queue <= (1 + tol) Q0 + 1 request (the one
   request so that an all but empty baseline does not demand an exactly empty queue).
   Windows end by the horizon or by the next trigger's start, whichever comes first.
3. No such window: not recovered by then; at the horizon, a metastable failure. No whole
   window after the end, or no baseline: cannot be judged (`recovered` null).

Goodput counts completions (answers within their timeout), so a server busy with attempts
nobody waits for does not pass. Without a sampled ready or pool queue, goodput alone is
judged. One-sided on purpose: goodput above the baseline (a backlog draining) or a queue
below it is no sign of trouble.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.schemas.results import Recovery
from asyncflow_backend.schemas.settings import RecoverySettings
from asyncflow_backend.schemas.triggers import Trigger

QUEUE_METRICS = frozenset({SampledMetric.READY_QUEUE_LEN, SampledMetric.POOL_WAITING})
"""The sampled series summed into the total queue."""
QUEUE_SLACK = 1.0
"""Requests the queue may exceed its tolerance by (see rule 2)."""
_EPS = 1e-9


@dataclass(frozen=True)
class QueueSeries:
    """The total queue sampled at t = k * period_s."""

    period_s: float
    values: np.ndarray

    def window_means(self, starts: np.ndarray, width_s: int) -> np.ndarray:
        """Mean of the samples in [t, t + width_s) for each t of `starts`; a window with no
        sample (a period longer than the window) takes the first sample at or after t."""
        n = self.values.size
        cumulative = np.concatenate(([0.0], np.cumsum(self.values)))
        low = np.minimum(np.ceil(starts / self.period_s - _EPS).astype(np.int64), n - 1)
        high = np.ceil((starts + width_s) / self.period_s - _EPS).astype(np.int64)
        high = np.clip(high, low + 1, n)
        means: np.ndarray = (cumulative[high] - cumulative[low]) / (high - low)
        return means


def total_queue(probes: Iterable[Probe], period_s: float) -> QueueSeries | None:
    """The sum of the sampled ready and pool queues, or None when neither was sampled."""
    series = [
        np.frombuffer(p.values, dtype=np.float64)
        for p in probes
        if p.metric in QUEUE_METRICS and len(p.values)
    ]
    if not series:
        return None
    return QueueSeries(period_s, np.sum(series, axis=0))


@dataclass(frozen=True)
class Baseline:
    """The level before a trigger: goodput G0 in requests/s and queue Q0 in requests."""

    goodput_rps: float
    queue: float | None


def measure_baseline(
    goodput: np.ndarray, queue: QueueSeries | None, start_s: float, end_s: float, window_s: int
) -> Baseline | None:
    """The baseline over the whole seconds of [start_s, end_s) (rule 1); None if fewer than
    `window_s` of them. `goodput[s]` is the completions in second [s, s + 1)."""
    first, last = math.ceil(start_s - _EPS), min(math.floor(end_s + _EPS), goodput.size)
    if last - first < window_s:
        return None
    level = None
    if queue is not None:
        starts = np.arange(first, last - window_s + 1, dtype=np.float64)
        level = float(queue.window_means(starts, window_s).max())
    return Baseline(float(goodput[first:last].mean()), level)


def window_starts(after_s: float, until_s: float, width_s: int, seconds: int) -> np.ndarray:
    """The whole seconds t >= `after_s` whose window [t, t + width_s) ends by `until_s` and
    within the `seconds` counted; empty when none fits."""
    first = math.ceil(after_s - _EPS)
    last = min(math.floor(until_s + _EPS), seconds) - width_s
    return np.arange(first, max(first, last + 1))


def first_recovered(
    goodput: np.ndarray,
    queue: QueueSeries | None,
    baseline: Baseline,
    starts: np.ndarray,
    settings: RecoverySettings,
) -> float | None:
    """The first of `starts` whose window meets `baseline` (rule 2), or None."""
    width = settings.window_s
    cumulative = np.concatenate(([0.0], np.cumsum(goodput, dtype=np.float64)))
    floor = (1 - settings.tolerance) * baseline.goodput_rps
    met = (cumulative[starts + width] - cumulative[starts]) / width >= floor - _EPS
    if queue is not None and baseline.queue is not None:
        bound = (1 + settings.tolerance) * baseline.queue + QUEUE_SLACK
        met &= queue.window_means(starts.astype(np.float64), width) <= bound + _EPS
    hits = np.flatnonzero(met)
    return float(starts[hits[0]]) if hits.size else None


def judge(
    triggers: Sequence[Trigger],
    goodput: np.ndarray,
    queue: QueueSeries | None,
    horizon_s: float,
    settings: RecoverySettings,
) -> list[Recovery]:
    """Each trigger's verdict under the rule, in order. `goodput[s]` is the completions in
    second [s, s + 1) (whole seconds of the horizon); `queue` the total queue (None: goodput
    alone is judged)."""
    verdicts: list[Recovery] = []
    previous: Baseline | None = None
    settled: float | None = 0.0  # when the previous trigger recovered (None: it did not)
    for k, trigger in enumerate(triggers):
        until = min(triggers[k + 1].start_s if k + 1 < len(triggers) else horizon_s, horizon_s)
        own = None
        if settled is not None:
            since = max(settled, trigger.start_s - settings.baseline_s)
            own = measure_baseline(goodput, queue, since, trigger.start_s, settings.window_s)
        baseline = own or previous
        starts = window_starts(trigger.end_s, until, settings.window_s, goodput.size)
        found = None
        if baseline is not None and starts.size:
            found = first_recovered(goodput, queue, baseline, starts, settings)
        verdicts.append(
            _verdict(trigger, baseline, bool(starts.size), found, until, horizon_s, settings)
        )
        previous, settled = baseline, found
    return verdicts


def _verdict(
    trigger: Trigger,
    baseline: Baseline | None,
    fits: bool,
    found: float | None,
    until: float,
    horizon_s: float,
    settings: RecoverySettings,
) -> Recovery:
    width = settings.window_s
    ended = f"{trigger.id} ended at {trigger.end_s:g} s"
    recovered: bool | None
    if baseline is None:
        recovered, note = (
            None,
            (
                f"cannot be judged: fewer than {width} s before {trigger.id} started at "
                f"{trigger.start_s:g} s to measure the level before it"
            ),
        )
    elif not fits:
        recovered, note = (
            None,
            (
                f"cannot be judged: no whole {width} s window between the end of {trigger.id} "
                f"({trigger.end_s:g} s) and {until:g} s"
            ),
        )
    elif found is None:
        recovered = False
        if until >= horizon_s:
            note = (
                f"metastable failure: did not recover after {ended}; by the horizon "
                f"({horizon_s:g} s) goodput and queues had not returned to their level before it"
            )
        else:
            note = f"had not recovered after {ended} when the next trigger started at {until:g} s"
    else:
        recovered, note = True, f"recovered {found - trigger.end_s:g} s after {ended}"
    at = found if recovered else None
    return Recovery(
        trigger=trigger.id,
        kind=trigger.kind,
        started_at_s=trigger.start_s,
        ended_at_s=trigger.end_s,
        recovered=recovered,
        recovered_at_s=at,
        recovery_s=None if at is None else at - trigger.end_s,
        judged_until_s=until,
        baseline_goodput_rps=None if baseline is None else baseline.goodput_rps,
        baseline_queue=None if baseline is None else baseline.queue,
        note=note,
    )


def recovery(
    triggers: Sequence[Trigger],
    completions_per_second: Sequence[int],
    probes: Iterable[Probe],
    period_s: float,
    horizon_s: float,
    settings: RecoverySettings | None,
) -> list[Recovery] | None:
    """The verdict on each of `triggers` from a run's completions per second and its sampled
    probes (`settings` None: the defaults); None without a trigger, computing nothing."""
    if not triggers:
        return None
    seconds = math.floor(horizon_s + _EPS)
    goodput = np.asarray(completions_per_second[:seconds], dtype=np.float64)
    queue = total_queue(probes, period_s)
    return judge(triggers, goodput, queue, horizon_s, settings or RecoverySettings())
