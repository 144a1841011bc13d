"""Means with standard errors and Student-t confidence intervals.

Independent replications give independent estimates X_1..X_n of one quantity;
their mean is reported with the standard error s / √n and the two-sided
interval mean ± t_{(1+c)/2, n-1} at confidence c s / √n (Law, *Simulation Modeling and
Analysis*, 5th ed., section 9.4.1). Successive observations within one run
are correlated; `batch_means` turns them into nearly independent batch
averages first (Law, section 9.5.3).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """The `probability` quantile of Student's t with `degrees_of_freedom` (scipy's `t.ppf`).

    Raises `ValueError` if the probability is not in (0, 1) or the degrees of freedom < 1.
    """
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {degrees_of_freedom}")
    return float(stats.t.ppf(probability, degrees_of_freedom))


@dataclass(frozen=True)
class Summary:
    """Mean, standard error and two-sided t interval of n independent estimates.

    With one value, or none, there is no spread to estimate: `standard_error`,
    `low` and `high` are None.
    """

    n: int
    mean: float | None
    standard_error: float | None
    low: float | None
    high: float | None
    confidence: float

    @property
    def half_width(self) -> float | None:
        """Half the interval's width, in the unit of the estimates."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2

    @property
    def relative_half_width(self) -> float | None:
        """Half-width over |mean|; None when either is unknown or the mean is 0."""
        half = self.half_width
        if half is None or not self.mean:
            return None
        return half / abs(self.mean)

    def upper_bound(self, confidence: float) -> float | None:
        """One-sided upper confidence bound mean + t_{c, n-1} SE; None below two values."""
        if self.mean is None or self.standard_error is None:
            return None
        return self.mean + t_quantile(confidence, self.n - 1) * self.standard_error

    def lower_bound(self, confidence: float) -> float | None:
        """One-sided lower confidence bound mean - t_{c, n-1} SE; None below two values."""
        if self.mean is None or self.standard_error is None:
            return None
        return self.mean - t_quantile(confidence, self.n - 1) * self.standard_error


def summarise(values: Sequence[float | None], confidence: float = 0.95) -> Summary:
    """Summary of independent estimates; None values (nothing measured) are left out.

    Raises `ValueError` if `confidence` is not in (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    kept = np.asarray([v for v in values if v is not None], dtype=np.float64)
    n = int(kept.size)
    if n == 0:
        return Summary(0, None, None, None, None, confidence)
    mean = float(kept.mean())
    if n == 1:
        return Summary(1, mean, None, None, None, confidence)
    error = float(kept.std(ddof=1) / math.sqrt(n))
    half = t_quantile((1 + confidence) / 2, n - 1) * error
    return Summary(n, mean, error, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class Estimate:
    """A simulated mean with its standard error."""

    mean: float
    standard_error: float
    batches: int

    def relative_error(self, exact: float) -> float:
        """(estimate - exact) / exact."""
        return (self.mean - exact) / exact

    def agrees_with(self, exact: float, z: float = 3.0) -> bool:
        """True if `exact` lies within z standard errors of the estimate."""
        return abs(self.mean - exact) <= z * self.standard_error


def batch_means(samples: np.ndarray, batches: int = 30, warmup_fraction: float = 0.1) -> Estimate:
    """The steady-state mean of a correlated output sequence, by the method of batch means.

    Successive response times of a queue are correlated, so their plain standard
    error is far too small. The first `warmup_fraction` of the samples (the
    transient from an empty system) is dropped, the rest is cut into `batches`
    consecutive batches of equal size, and the batch averages, nearly independent
    when each batch is much longer than the queue's memory, give the standard
    error s / √batches.

    Raises `ValueError` if fewer than two samples per batch remain.
    """
    values = np.asarray(samples, dtype=np.float64)
    kept = values[int(len(values) * warmup_fraction) :]
    size = len(kept) // batches
    if size < 2:
        raise ValueError(f"{len(values)} samples are too few for {batches} batches")
    averages = kept[: size * batches].reshape(batches, size).mean(axis=1)
    return Estimate(
        float(averages.mean()), float(averages.std(ddof=1) / math.sqrt(batches)), batches
    )
