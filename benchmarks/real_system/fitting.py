"""Fit a scenario random variable to measured durations.

The shape is chosen from the coefficient of variation cv = s / x̄ (sample standard deviation
over the sample mean): under `DETERMINISTIC_CV` the spread is noise and the draw is the mean;
within `EXPONENTIAL_CV` of 1 the durations are taken as exponential (cv = 1 exactly); otherwise
a log-normal with the sample's mean and variance (the scenario language's ``log_normal`` takes
the variable's own mean and variance). Moment matching, because the engine needs the mean
right above all (utilisation and the queue follow it) and the variance next (Pollaczek-Khinchine:
an M/G/1 queue's mean wait grows with E[S²]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DETERMINISTIC_CV = 0.1
EXPONENTIAL_CV = (0.8, 1.25)
SMALLEST_S = 1e-6  # the scenario language needs durations > 0


def coefficient_of_variation(samples: Sequence[float] | np.ndarray) -> float:
    """Sample standard deviation (ddof 1) over the mean.

    ValueError with fewer than two samples or a mean that is not > 0.
    """
    values = np.asarray(samples, dtype=float)
    if values.size < 2:
        raise ValueError("a coefficient of variation needs at least two samples")
    mean = float(values.mean())
    if mean <= 0:
        raise ValueError("durations must have a mean > 0")
    return float(values.std(ddof=1)) / mean


def fit_duration(samples: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """A random variable of the scenario language (``{mean, distribution[, variance]}``).

    One sample gives a deterministic duration; ValueError without samples.
    """
    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        raise ValueError("no samples to fit")
    mean = max(float(values.mean()), SMALLEST_S)
    if values.size == 1:
        return {"mean": mean, "distribution": "deterministic"}
    cv = coefficient_of_variation(values) if float(values.mean()) > 0 else 0.0
    if cv < DETERMINISTIC_CV:
        return {"mean": mean, "distribution": "deterministic"}
    low, high = EXPONENTIAL_CV
    if low <= cv <= high:
        return {"mean": mean, "distribution": "exponential"}
    variance = float(values.var(ddof=1))
    if not math.isfinite(variance):
        raise ValueError("samples have no finite variance")
    return {"mean": mean, "distribution": "log_normal", "variance": variance}
